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
    """Every energy term, correction and time term of the built-in structures."""
    from ..model.terms import COMPACT_TERMS, CORRECTIONS, PHYSICS_TERMS, TIME_TERMS

    out = []
    for title, terms in (("Physics structure (`--structure physics`)", PHYSICS_TERMS),
                         ("Compact structure (`--structure compact`)", COMPACT_TERMS)):
        out += [f"**{title}**: energy per request = sum of coefficient x expression (J).", "",
                "| coefficient | group | prefill expression | decode expression | prior | bounds | recalibrated | meaning |",
                "|---|---|---|---|---|---|---|---|"]
        for t in terms:
            out.append(f"| `{t.name}` | {t.group} | {f'`{t.prefill}`' if t.prefill else '–'} | "
                       f"{f'`{t.decode}`' if t.decode else '–'} | {t.prior:g} | [{_fmt(t.lower)}, {_fmt(t.upper)}] | "
                       f"{'yes' if t.recalibrate else 'no'} | {_cell(t.doc)} |")
        out.append("")
    out += ["**Corrections** (`auto` may add them to either structure): the prediction is multiplied by "
            "`exp(c * expression)`, a power law in a dimensionless group with a fitted exponent `c` (prior 0).", "",
            "| exponent | expression | group |", "|---|---|---|"]
    out += [f"| `{c.name}` | `{c.expression}` | {_cell(c.doc)} |" for c in CORRECTIONS]
    out += ["", "**Time model** (TTFT and ITL only; energy never uses it, so these coefficients are not counted "
            "among an energy prediction's fitted numbers).", "",
            "| coefficient | ITL expression (s) | TTFT expression (s) | prior | lower bound | meaning |",
            "|---|---|---|---|---|---|"]
    out += [f"| `{t.name}` | {f'`{t.itl}`' if t.itl else '–'} | {f'`{t.ttft}`' if t.ttft else '–'} | {t.prior:g} | "
            f"{_fmt(t.lower)} | {_cell(t.doc)} |" for t in TIME_TERMS]
    prov = sorted({t.provenance for t in (*PHYSICS_TERMS, *COMPACT_TERMS, *TIME_TERMS)} | {c.provenance for c in CORRECTIONS})
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
           + f". Fitted numbers behind an energy prediction: {d['fitted_numbers']['energy']}"
           + (f" (the file holds {d['fitted_numbers']['distinct_energy_values']} distinct energy values: the shared ones "
              f"and each engine's own values of its recalibrated coefficients)"
              if d["fitted_numbers"].get("distinct_energy_values", 0) > d["fitted_numbers"]["energy"] else "") + ".", "",
           "```", *s.formula_lines(), "```", "",
           "| coefficient | value | 95% interval | fitted | used by energy | prior provenance |", "|---|---|---|---|---|---|"]
    coefs = m.coefficients()
    for r in coefs.itertuples():
        interval = f"{r.lo95:.3g} – {r.hi95:.3g}" if r.identified else _cell(r.identification)
        out.append(f"| `{r.name}` | {r.value:.3g} | {interval} | {'yes' if r.fitted else 'prior'} | "
                   f"{'yes' if r.used_by_energy else 'no'} | {_cell(r.prior_provenance)} |")
    weak = coefs.loc[coefs["status"] == NOT_IDENTIFIED, "name"]
    if len(weak):
        out += ["", f"Not identified by the training rows: {', '.join(f'`{n}`' for n in weak)}. {rule_text()}; "
                "a share of energy resting on one of them is flagged by `energylens explain`."]
    if m.engines_:
        names = [t.name for t in s.energy_terms if t.recalibrate] + [c.name for c in s.corrections if c.recalibrate]
        out += ["", "Engine-specific values of the recalibrated energy coefficients:", "",
                "| coefficient | " + " | ".join(m.engines_) + " |", "|---|" + "---|" * len(m.engines_)]
        for n in names:
            j = s.energy_names.index(n)
            out.append(f"| `{n}` | " + " | ".join(f"{e['coef'][j]:.3g}" for e in m.engines_.values()) + " |")
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
