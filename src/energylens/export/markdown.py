"""Markdown generated from the term table and the shipped model: the formula blocks of docs/MODEL.md.

`python -m energylens.export.markdown docs/MODEL.md` rewrites every block between
`<!-- generated: NAME -->` and `<!-- end generated -->`; a test keeps the file equal to the code.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path


def _cell(x) -> str:
    return str(x).replace("|", "\\|")


def _fmt(x) -> str:
    return "∞" if x == float("inf") else f"{x:g}"


def term_table() -> str:
    """The formula's definitions, every coefficient of the built-in structures and the correction library."""
    from ..model.structure import compact_structure, physics_structure
    from ..model.terms import CORRECTIONS, SATURATION_ORDER

    phys, comp = physics_structure(), compact_structure()
    out = ["**The formula** (`--structure physics`), one definition per line in evaluation order; every symbol is a "
           "feature (docs/MODEL.md, Features), a coefficient below, or a definition above it. `corr_power` and "
           f"`corr_time` are 1 without corrections. sat(x) = x (1 + x^{SATURATION_ORDER})^(-1/{SATURATION_ORDER}) is "
           "written out in p_decode and p_prefill.", "", "| quantity | definition | unit | meaning |", "|---|---|---|---|"]
    unit = {d.name: (d.unit, d.doc) for d in phys.definitions()}
    for name, text, _ in phys.parsed:
        u, doc = unit[name]
        out.append(f"| `{name}` | `{_cell(text)}` | {u or '–'} | {_cell(doc)} |")
    out += ["", "The compact structure (`--structure compact`) replaces the two times:", "",
            "| quantity | definition |", "|---|---|"]
    out += [f"| `{d.name}` | `{_cell(d.expression)}` |" for d in comp.time]
    for title, s in (("Physics coefficients", phys), ("Compact coefficients", comp)):
        out += ["", f"**{title}**", "", "| coefficient | kind | prior | bounds | recalibrated | groups | meaning |",
                "|---|---|---|---|---|---|---|"]
        for c in s.coefficients:
            out.append(f"| `{c.name}` | {c.kind} | {c.prior:g} | [{_fmt(c.lower)}, {_fmt(c.upper)}] | "
                       f"{'yes' if c.recalibrate else 'no'} | {', '.join(c.groups)} | {_cell(c.doc)} |")
    out += ["", "**Corrections** (`auto` may add them to either structure): a power law `exp(c * group)` with a "
            "fitted exponent `c` (prior 0), on the dynamic power demand (target power: inside sat, so power stays "
            "within [static, TDP]) or on the times (target time: held at or above the ideal hardware time), its group "
            "held within the training range.", "", "| exponent | group | target | meaning |", "|---|---|---|---|"]
    out += [f"| `{c.name}` | `{c.expression}` | {c.target} | {_cell(c.doc)} |" for c in CORRECTIONS]
    prov = sorted({c.provenance for c in (*phys.coefficients, *comp.coefficients)} | {c.provenance for c in CORRECTIONS})
    out += ["", "Prior provenance: " + "; ".join(prov) + "."]
    return "\n".join(out)


def shipped_model() -> str:
    """The structure and coefficients of the model shipped in the package."""
    from ..model.default import default_model, default_model_dict
    from ..model.identification import NOT_IDENTIFIED, rule_text

    d = default_model_dict()
    m = default_model()
    s = m.structure_
    prov = d["provenance"]
    tm = prov.get("train_metrics", {})
    out = [f"Structure `{s.name}`: {s.why}.", "",
           f"Trained on {prov.get('rows')} rows ({', '.join(prov.get('sources', []))}); in sample: energy MAPE "
           f"{100 * tm.get('energy_mape', float('nan')):.1f}%"
           + (f", ITL MAPE {100 * tm['itl_mape']:.1f}%" if "itl_mape" in tm else "")
           + (f", TTFT MAPE {100 * tm['ttft_mape']:.1f}%" if "ttft_mape" in tm else "")
           + (f", power MAPE {100 * tm['power_mape']:.1f}%" if "power_mape" in tm else "")
           + f". Fitted numbers behind a prediction (the time model's included): {d['fitted_numbers']['energy']}"
           + (f" (the file holds {d['fitted_numbers']['distinct_values']} distinct values: the shared ones "
              f"and each engine's own values of its recalibrated coefficients)"
              if d["fitted_numbers"].get("distinct_values", 0) > d["fitted_numbers"]["energy"] else "") + ".", "",
           "```", *s.formula_lines(), "```", "",
           "| coefficient | kind | value | 95% interval | fitted | prior provenance |", "|---|---|---|---|---|---|"]
    coefs = m.coefficients()
    for r in coefs.itertuples():
        interval = f"{r.lo95:.3g} – {r.hi95:.3g}" if r.identified else _cell(r.identification)
        out.append(f"| `{r.name}` | {r.kind} | {r.value:.3g} | {interval} | {'yes' if r.fitted else 'prior'} | "
                   f"{_cell(r.prior_provenance)} |")
    weak = coefs.loc[coefs["status"] == NOT_IDENTIFIED, "name"]
    if len(weak):
        out += ["", f"Not identified by the training rows: {', '.join(f'`{n}`' for n in weak)}. {rule_text()}; "
                "a share of energy resting on one of them is flagged by `energylens explain`."]
    if m.engines_:
        names = [r.name for r in s.records() if r.recalibrate]
        out += ["", "Engine-specific values of the recalibrated coefficients:", "",
                "| coefficient | " + " | ".join(m.engines_) + " |", "|---|" + "---|" * len(m.engines_)]
        for n in names:
            j = s.names.index(n)
            out.append(f"| `{n}` | " + " | ".join(f"{e.values[j]:.3g}" for e in m.engines_.values()) + " |")
    return "\n".join(out)


BLOCKS = {"term-table": term_table, "shipped-model": shipped_model}
_PATTERN = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)


def render(text: str) -> str:
    """`text` with every generated block replaced by what the code generates now."""
    return _PATTERN.sub(lambda m: m.group(1) + BLOCKS[m.group("name")]() + "\n" + m.group(4), text)


def main(argv=None) -> int:
    from ..io import atomic_write_text

    for name in (argv if argv is not None else sys.argv[1:]) or ["docs/MODEL.md"]:
        path = Path(name)
        atomic_write_text(path, render(path.read_text()))
        print(f"regenerated the blocks of {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
