"""`energylens fit | predict | explain | show`: the closed-form model from the command line."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ._options import seed_option

from ._console import console, constant_first, fmt, metrics_text, percent, plain, plural, print_table


MODEL_FILE_HELP = "Model file written by `energylens fit`, or 'default' for the model shipped with EnergyLens."


def _load(model_file: Path):
    from ..model.modelfile import load_model

    return load_model(model_file)


def fit(
    data: list[Path] = typer.Argument(..., help="Profiling data (CSV or Parquet in the schema); several files are concatenated."),
    output: Path = typer.Option(..., "-o", "--output", help="Model file to write (JSON)."),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help="Fit on N rows drawn at random."),
    seed: int = seed_option("Seed for the row draw and the fit's extra starts."),
    base: Optional[Path] = typer.Option(None, "--from", help="Recalibrate this model ('default' = the shipped one): refit only the hardware- and engine-dependent coefficients."),
    note: Optional[str] = typer.Option(None, "--note", help="Free text stored in the model's provenance (e.g. how to regenerate it)."),
    engine_column: Optional[str] = typer.Option(None, "--engine-column", help="Column naming each row's serving engine or cluster (e.g. source): hardware/engine coefficients per engine around one shared fit."),
    structure: str = typer.Option("auto", "--structure", help="auto (chosen by 5-fold cross-validation on these rows), physics, compact, or a model file whose structure to refit."),
):
    """Fit the closed-form energy and time models and write a JSON model file."""
    from ._paths import check_output
    check_output(output, inputs=[*data, base, Path(structure)])
    from ..data.schema import load_many
    from ..errors import DataError
    from ..model.estimator import EnergyLensRegressor, recalibration, recalibration_check
    from ..model.modelfile import save_model


    df = load_many(data)
    structure_arg = _structure_option(structure)
    if samples is not None:
        if samples > len(df):
            raise DataError(f"--samples {samples} exceeds the {len(df)} rows of {', '.join(map(str, data))}")
        df = df.sample(n=samples, random_state=seed).reset_index(drop=True)
    provenance = {"data": [str(p) for p in data], "rows": len(df), "seed": seed, "samples": samples,
                  "sources": sorted(map(str, df["source"].dropna().unique())) if "source" in df else [],
                  "command": "energylens fit " + " ".join([*map(str, data), "-o", str(output)]
                                                         + (["--samples", str(samples)] if samples else [])
                                                         + ["--seed", str(seed)] + (["--from", str(base)] if base else [])
                                                         + ([] if structure == "auto" else ["--structure", structure]))}
    if note:
        provenance["note"] = note
    if base is not None:
        base_model = _load(base)  # 'default' included
        model, refit = recalibration(base_model, df, random_state=seed)
        model.fit(df)
        provenance["recalibrated_from"] = {"file": str(base), "refit": list(refit),
                                           "base_provenance": getattr(base_model, "provenance_", {})}
        check = recalibration_check(model, df, random_state=seed)
        if check is not None:
            provenance["recalibrated_from"]["check"] = check
    else:
        if engine_column is not None and engine_column not in df.columns:
            raise DataError(f"--engine-column '{engine_column}' is not a column of {', '.join(map(str, data))}")
        model = EnergyLensRegressor(structure=structure_arg, random_state=seed, engine_column=engine_column).fit(df)
    save_model(model, output, provenance)
    _report_fit(model, len(df), output)
    check = provenance.get("recalibrated_from", {}).get("check")
    if check and check["fresh_is_better"]:
        console.print(f"  warning: these rows are far from the base model: its recalibration cross-validates at "
                      f"{percent(check['recalibrated_cv_mape'])} MAPE, a fit on these {len(df)} rows alone at "
                      f"{percent(check['fresh_cv_mape'])} ({check['fresh_structure']}, {check['fresh_fitted']} fitted "
                      f"numbers); drop --from to use it", markup=False, highlight=False)


def _grouped_notes(notes) -> list[str]:
    """The fit's notes with the coefficients kept at their prior gathered by reason, one line per reason
    (a recalibration keeps most of them: one line each would bury the rest)."""
    import re

    kept: dict[str, list[str]] = {}
    out = []
    for note in notes:
        m = re.fullmatch(r"(\S+): kept at prior \S+ \((.+)\)", note)
        if m:
            kept.setdefault(m.group(2), []).append(m.group(1))
        else:
            out.append(note)
    for why, names in kept.items():
        label = "kept at the base model's values" if why == "held fixed" else f"kept at their priors ({why})"
        out.append(f"{label}: {', '.join(names)}")
    return out


def _structure_option(value: str):
    """--structure: a built-in name, or a model file whose structure is refitted."""
    from ..errors import EnergyLensError
    from ..model.estimator import STRUCTURES

    if value in STRUCTURES:
        return value
    if not Path(value).exists():
        raise EnergyLensError(f"--structure: expected {', '.join(STRUCTURES)} or a model file, got '{value[:80]}'")
    return _load(Path(value)).structure_


def _report_fit(model, rows: int, output) -> None:
    """What `fit` and `discover` print after writing a model: errors in sample and by CV, and the count."""
    m = model.train_metrics_
    others = {k: v for k, v in m.items() if k.endswith("mape") and k != "energy_mape"}
    extra = f", {metrics_text(others)}" if others else ""
    cv = getattr(model, "cv_", {}) or {}
    cv_text = f", {cv['folds']}-fold CV MAPE {percent(cv['mape'])}" if cv.get("folds") and cv.get("mape") is not None else ""
    s = model.structure_
    console.print(f"fitted {plural(rows, 'row')}: energy MAPE {percent(m['energy_mape'])} (in sample){cv_text}{extra}; "
                  f"structure '{s.name}' with {model.fitted_count()} fitted numbers behind energy; wrote {output}",
                  markup=False, highlight=False)
    if s.why:
        console.print(f"  structure: {s.why}", markup=False, highlight=False)
    for note in _grouped_notes(model.notes_):
        console.print(f"  note: {note}", markup=False, highlight=False)
    from ..model.identification import NOT_IDENTIFIED

    coefs = model.coefficients()
    weak = coefs[coefs["status"] == NOT_IDENTIFIED]
    if len(weak):
        console.print(f"  NOT IDENTIFIED by these rows: {', '.join(weak['name'])} (`energylens show` says why; "
                      "explain flags the shares resting on them)", markup=False, highlight=False)
    for g, e in (getattr(model, "engines_", None) or {}).items():
        console.print(f"  engine '{g}': {plural(e['rows'], 'row')}, hardware/engine coefficients recalibrated", markup=False,
                      highlight=False)


def _print_coefficients(model) -> None:
    """The coefficient table of `show`: a 95% interval only where the data identified the coefficient."""
    from ..model.identification import NOT_IDENTIFIED, rule_text

    coefs = model.coefficients()
    view = coefs[["name", "value"]].copy()
    view["95% interval"] = [f"{fmt(r.lo95)} to {fmt(r.hi95)}" if r.identified else r.identification
                            for r in coefs.itertuples()]
    view["energy"] = coefs["used_by_energy"].map({True: "yes", False: "no (time)"})
    view["meaning"] = coefs["meaning"]
    print_table(view, title="Coefficients (95% intervals where the data identified them)", drop_order=("energy",),
                compact=False, how="the model file holds them")
    weak = coefs[coefs["status"] == NOT_IDENTIFIED]
    if len(weak):
        console.print(plain(f"not identified by the training rows: {', '.join(weak['name'])}; {rule_text()}"),
                      highlight=False)


def predict(
    model_file: Path = typer.Argument(..., help=MODEL_FILE_HELP),
    configs: Path = typer.Argument(..., help="Configurations (CSV or Parquet; measured columns not needed)."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the configurations with predictions."),
):
    """Predict energy per request and per token, the prefill/decode split, TTFT and ITL."""
    from ._paths import check_output
    check_output(output, inputs=[model_file, configs])
    from ..data.stream import predict_file

    model = _load(model_file)
    rows = predict_file(model, configs, output)  # in chunks: memory bounded whatever the file's size
    console.print(f"predicted {plural(rows, 'configuration')}; wrote {output}")


# What identifies a configuration in explain's output ("row" is its 1-based row in the file).
EXPLAIN_IDS = ("row", "model", "gpu", "num_gpus", "tp", "pp", "ep", "dp", "precision", "batch_size", "input_tokens",
               "output_tokens")


def explain(
    model_file: Path = typer.Argument(..., help=MODEL_FILE_HELP),
    configs: Path = typer.Argument(..., help="Configurations to explain (CSV or Parquet)."),
    rows: int = typer.Option(10, "--rows", min=1, help="How many configurations to show."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
):
    """Energy per request broken down per term group (prefill, decode, TP, PP, EP, overhead) in J and %,
    and the prefill phase as `predict` gives it; shares resting on a term the data did not identify are flagged."""
    from ..data.stream import read_head

    model = _load(model_file)
    df = read_head(configs, rows)  # reads (and validates) only the rows it shows
    shown = _explained(model, df)
    if json_out:
        typer.echo(json.dumps(_records(shown), indent=2))
        return
    view, title, caption = _explain_table(model, shown)
    print_table(view, title=title, drop_order=constant_first(view, EXPLAIN_DROP_ORDER), compact=False, caption=caption)


# explain's columns left out on a narrow terminal, first ones first (after those equal on every shown row:
# `constant_first`); the row number, J/req and the term shares stay.
EXPLAIN_DROP_ORDER = ("n", "pp", "ep", "dp", "precision", "in", "out", "model", "gpu", "meas. pf%", "pf J", "tp",
                      "batch")


def _explained(model, df):
    """explain's rows: what identifies each configuration, the model's breakdown, the measured prefill share."""
    ex = model.explain(df)
    phases = model.predict_frame(df)[["pred_prefill_energy_j", "pred_decode_energy_j"]]  # the very figures of predict
    shown = df.assign(row=df.index + 1)[[c for c in EXPLAIN_IDS if c in df.columns or c == "row"]].copy()
    for c in [*ex.columns, *phases.columns]:
        shown[c] = (ex[c] if c in ex else phases[c]).to_numpy()
    if {"prefill_energy_j", "decode_energy_j"} <= set(df.columns):
        meas = df["prefill_energy_j"] / (df["prefill_energy_j"] + df["decode_energy_j"])
        shown["measured_prefill_share_pct"] = (100 * meas).to_numpy()
    return shown


def _records(shown) -> list[dict]:
    """JSON records: plain numbers (full precision), null for missing values."""
    import math

    clean = lambda v: None if isinstance(v, float) and not math.isfinite(v) else v.item() if hasattr(v, "item") else v
    return [{k: clean(v) for k, v in r.items()} for r in shown.to_dict(orient="records")]


def _explain_table(model, shown):
    from ..model.identification import UNSUPPORTED
    from ..model.terms import GROUP_LABELS, GROUPS

    view = shown[["row", "model", "gpu", "num_gpus", "tp", "pp", "ep"]].copy()
    view["model"] = view["model"].str.split("/").str[-1]
    for col in ("dp", "precision"):  # shown only where they tell rows apart
        if col in shown and shown[col].nunique(dropna=False) > 1:
            view[col] = shown[col]
    view = view.assign(batch=shown["batch_size"], **{"in": shown["input_tokens"], "out": shown["output_tokens"],
                                                      "J/req": shown["total_j"], "pf J": shown["pred_prefill_energy_j"]})
    view = view.rename(columns={"row": "#", "num_gpus": "n"})
    flagged = shown["shares_not_identified"]
    mark = lambda share, col: [f"{v:.1f}*" if share in f else f"{v:.1f}" for v, f in zip(shown[col], flagged)]
    for g in GROUPS:  # term groups (a term's prefill and decode parts together); the phase split is beside them
        if (shown[f"{g}_pct"].fillna(0) != 0).any():
            view[f"{GROUP_LABELS[g]}%"] = mark(g, f"{g}_pct")
    view["pf%"] = mark("prefill_share", "prefill_share_pct")
    if "measured_prefill_share_pct" in shown:
        view["meas. pf%"] = shown["measured_prefill_share_pct"].round(1)
    title = ("Energy per request by term group, percent of total (prefill%: the prefill-compute terms; "
             "pf J and pf%: the prefill phase, every term's prefill part: predict's pred_prefill_energy_j)")
    caption = None
    hit = {g for f in flagged for g in f}
    if hit:  # the terms behind the flags: those of a flagged group (a term's prefill part is in its group too)
        group_of = {t.name: t.group for t in model.structure_.energy_terms}
        coefs = model.coefficients()
        weak = coefs[coefs["name"].map(group_of).isin(hit) & coefs["status"].isin(UNSUPPORTED)]
        caption = plain("*: rests on a term the data did not identify: "
                        + "; ".join(f"{r.name} ({r.identification})" for r in weak.itertuples()))
    return view, title, caption


def show(model_file: Path = typer.Argument(..., help=MODEL_FILE_HELP),
         latex: bool = typer.Option(False, "--latex", help="Also print the formula in LaTeX.")):
    """Print a model file: formula, coefficients with 95% intervals, provenance."""
    from ..export.latex import formula_latex
    from ..model.modelfile import model_from_dict, read_model_dict

    d = read_model_dict(model_file)
    model = model_from_dict(d, model_file)
    console.print(plain(f"{model_file} (schema {d['schema_version']}, energylens {str(d.get('energylens_version'))[:40]})"),
                  highlight=False)
    s = model.structure_
    typer.echo(plain("\n".join(s.formula_lines())).plain)  # formulas are copied: never wrapped by the console
    console.print(plain(f"structure '{s.name}': {s.why or 'as given'}; {model.fitted_count()} fitted numbers behind an "
                        "energy prediction (time coefficients feed TTFT and ITL only)"), highlight=False)
    cv = getattr(model, "cv_", {}) or {}
    if cv.get("folds") and cv.get("mape") is not None:
        console.print(f"cross-validation: {cv['folds']}-fold MAPE {percent(cv['mape'])} on the training rows")
    _print_coefficients(model)
    prov = d.get("provenance", {})
    for k in ("data", "rows", "seed", "created", "command", "note"):
        if k == "command" and k in prov:  # copy-paste text: printed as one line
            typer.echo(plain(f"{k}: {prov[k]}", 2000).plain)
        elif k in prov:
            console.print(plain(f"{k}: {prov[k]}", 2000), highlight=False)
    metrics = prov.get("train_metrics")
    if isinstance(metrics, dict):
        console.print(plain("train metrics (in sample): " + metrics_text(metrics), 2000), highlight=False)
    rec = prov.get("recalibrated_from")
    if isinstance(rec, dict):
        refit = rec.get("refit", [])
        console.print(plain(f"recalibrated from {rec.get('file')} (refit: "
                            f"{', '.join(map(str, refit)) if isinstance(refit, list) else refit})", 2000), highlight=False)
    if latex:  # copy-paste text: plain lines, never hard-wrapped mid-subscript
        typer.echo(plain(formula_latex(model)).plain)
