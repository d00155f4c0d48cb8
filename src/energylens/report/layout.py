"""Checks that a Matplotlib figure is readable: every label inside the canvas and no two labels overlapping.

Measured on the figure as it is drawn (the renderer's bounding boxes of titles, axis labels, tick labels and
legend texts), so a long title cut at the edge or crowded tick labels are found without looking at the PNG.
"""
from __future__ import annotations


def _shown(labels, limits, coordinate: int) -> list:
    """The tick labels Matplotlib draws: those at a location inside the view limits (it also keeps labels
    for locations just outside, which are never drawn)."""
    lo, hi = sorted(limits)
    span = (hi - lo) * 1e-9
    return [t for t in labels if lo - span <= t.get_position()[coordinate] <= hi + span]


def _texts(fig) -> list[tuple[str, object]]:
    """(name, Text) of every visible, non-empty label of the figure."""
    out = []
    if fig._suptitle is not None:
        out.append(("suptitle", fig._suptitle))
    for i, ax in enumerate(fig.axes):
        out += [(f"axes {i} title", t) for t in (ax.title, ax._left_title, ax._right_title)]
        out += [(f"axes {i} x label", ax.xaxis.label), (f"axes {i} y label", ax.yaxis.label)]
        out += [(f"axes {i} x tick {t.get_text()!r}", t) for t in _shown(ax.get_xticklabels(), ax.get_xlim(), 0)]
        out += [(f"axes {i} y tick {t.get_text()!r}", t) for t in _shown(ax.get_yticklabels(), ax.get_ylim(), 1)]
        legend = ax.get_legend()
        if legend is not None:
            out += [(f"axes {i} legend {t.get_text()!r}", t) for t in legend.get_texts()]
    return [(n, t) for n, t in out if t.get_visible() and t.get_text().strip()]


def layout_problems(fig, tolerance_px: float = 1.0) -> list[str]:
    """What is clipped (a label reaching outside the figure) or overlapping (two labels' boxes intersecting
    by more than `tolerance_px` each way); empty when the figure is readable."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = fig.bbox
    boxes = []
    for name, text in _texts(fig):
        box = text.get_window_extent(renderer)
        if box.width <= 0 or box.height <= 0:
            continue
        boxes.append((name, box))
    problems = [f"{name} is clipped (reaches outside the figure)" for name, b in boxes
                if b.x0 < frame.x0 - tolerance_px or b.y0 < frame.y0 - tolerance_px
                or b.x1 > frame.x1 + tolerance_px or b.y1 > frame.y1 + tolerance_px]
    for i, (n1, a) in enumerate(boxes):
        for n2, b in boxes[i + 1:]:
            dx = min(a.x1, b.x1) - max(a.x0, b.x0)
            dy = min(a.y1, b.y1) - max(a.y0, b.y0)
            if dx > tolerance_px and dy > tolerance_px:
                problems.append(f"{n1} overlaps {n2}")
    return problems
