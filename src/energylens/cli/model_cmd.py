"""`energylens fit | predict | explain | show`: the closed-form model from the command line."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._console import console, plain, table


def _load(model_file: Path):
    from ..model.modelfile import load_model

    return load_model(model_file)


def fit(
    data: list[Path] = typer.Argument(..., help="Profiling data (CSV or Parquet in the schema); several files are concatenated."),
    output: Path = typer.Option(..., "-o", "--output", help="Model file to write (JSON)."),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help="Fit on N rows drawn at random."),
    seed: int = typer.Option(0, "--seed", help="Seed for the row draw and the fit's extra starts."),
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
    from ..model.estimator import EnergyLensRegressor, recalibration
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
        if str(base) == "default" and not base.exists():
            from ..model.default import default_model

            base_model = default_model(estimator=True)
        else:
            base_model = _load(base)
        model, refit = recalibration(base_model, df, random_state=seed)
        model.fit(df)
        provenance["recalibrated_from"] = {"file": str(base), "refit": list(refit),
                                           "base_provenance": getattr(base_model, "provenance_", {})}
    else:
        if engine_column is not None and engine_column not in df.columns:
            raise DataError(f"--engine-column '{engine_column}' is not a column of {', '.join(map(str, data))}")
        model = EnergyLensRegressor(structure=structure_arg, random_state=seed, engine_column=engine_column).fit(df)
    save_model(model, output, provenance)
    _report_fit(model, len(df), output)


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
    extra = "".join(f", {k} {100 * v:.1f}%" for k, v in m.items() if k.endswith("mape") and k != "energy_mape")
    cv = getattr(model, "cv_", {}) or {}
    cv_text = f", {cv['folds']}-fold CV MAPE {100 * cv['mape']:.1f}%" if cv.get("folds") and cv.get("mape") is not None else ""
    s = model.structure_
    console.print(f"fitted {rows} rows: energy MAPE {100 * m['energy_mape']:.1f}% (in sample){cv_text}{extra}; "
                  f"structure '{s.name}' with {model.fitted_count()} fitted numbers behind energy; wrote {output}",
                  markup=False, highlight=False)
    if s.why:
        console.print(f"  structure: {s.why}", markup=False, highlight=False)
    for note in model.notes_:
        console.print(f"  note: {note}", markup=False, highlight=False)
    for g, e in (getattr(model, "engines_", None) or {}).items():
        console.print(f"  engine '{g}': {e['rows']} rows, hardware/engine coefficients recalibrated", markup=False,
                      highlight=False)


def predict(
    model_file: Path = typer.Argument(..., help="Model file written by `energylens fit`."),
    configs: Path = typer.Argument(..., help="Configurations (CSV or Parquet; measured columns not needed)."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the configurations with predictions."),
):
    """Predict energy per request and per token, the prefill/decode split, TTFT and ITL."""
    from ._paths import check_output
    check_output(output, inputs=[model_file, configs])
    from ..data.schema import load_profiles
    from ..io import write_table

    model = _load(model_file)
    df = load_profiles(configs, require_energy=False)
    pred = model.predict_frame(df)
    out = df.copy()
    for c in pred.columns:
        out[c] = pred[c].to_numpy()
    write_table(out, output)
    console.print(f"predicted {len(out)} configurations; wrote {output}")


def explain(
    model_file: Path = typer.Argument(..., help="Model file written by `energylens fit`."),
    configs: Path = typer.Argument(..., help="Configurations to explain (CSV or Parquet)."),
    rows: int = typer.Option(10, "--rows", min=1, help="How many configurations to show."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
):
    """Energy per request broken down per term group (prefill, decode, TP, PP, EP, overhead) in J and %."""
    import numpy as np

    from ..data.schema import load_profiles

    model = _load(model_file)
    df = load_profiles(configs, require_energy=False).head(rows)
    ex = model.explain(df)
    show = df[["model", "gpu", "num_gpus", "tp", "pp", "batch_size", "input_tokens", "output_tokens"]].copy()
    for c in ex.columns:
        show[c] = ex[c].to_numpy()
    if {"prefill_energy_j", "decode_energy_j"} <= set(df.columns):
        meas = df["prefill_energy_j"] / (df["prefill_energy_j"] + df["decode_energy_j"])
        show["measured_prefill_share_pct"] = (100 * meas).to_numpy()
    if json_out:
        typer.echo(show.replace({np.nan: None}).to_json(orient="records", indent=2))
        return
    view = show[["model", "gpu", "num_gpus", "tp", "pp", "batch_size", "total_j"]].copy()
    view["model"] = view["model"].str.split("/").str[-1]
    view = view.rename(columns={"num_gpus": "n", "batch_size": "batch", "total_j": "J/req"})
    if "ep" in df:
        view.insert(5, "ep", df["ep"].to_numpy())
    from ..model.terms import GROUP_LABELS, GROUPS

    for g in GROUPS:  # term groups (a term's prefill and decode parts together); the phase split is beside them
        if (show[f"{g}_pct"].fillna(0) != 0).any():
            view[f"{GROUP_LABELS[g]}%"] = show[f"{g}_pct"].round(1)
    view["pf%"] = show["prefill_share_pct"].round(1)
    if "measured_prefill_share_pct" in show:
        view["meas. pf%"] = show["measured_prefill_share_pct"].round(1)
    console.print(table(view, title="Energy per request by term group, percent of total (pf%: the prefill "
                                    "phase, pred_prefill_energy_j)"))


def show(model_file: Path = typer.Argument(..., help="Model file written by `energylens fit`."),
         latex: bool = typer.Option(False, "--latex", help="Also print the formula in LaTeX.")):
    """Print a model file: formula, coefficients with 95% intervals, provenance."""
    from ..export.latex import formula_latex
    from ..model.modelfile import model_from_dict, read_model_dict

    d = read_model_dict(model_file)
    model = model_from_dict(d, model_file)
    console.print(plain(f"{model_file} (schema {d['schema_version']}, energylens {str(d.get('energylens_version'))[:40]})"),
                  highlight=False)
    s = model.structure_
    console.print(plain("\n".join(s.formula_lines())), highlight=False)
    console.print(plain(f"structure '{s.name}': {s.why or 'as given'}; {model.fitted_count()} fitted numbers behind an "
                        "energy prediction (time coefficients feed TTFT and ITL only)"), highlight=False)
    cv = getattr(model, "cv_", {}) or {}
    if cv.get("folds") and cv.get("mape") is not None:
        console.print(f"cross-validation: {cv['folds']}-fold MAPE {100 * cv['mape']:.1f}% on the training rows")
    console.print(table(model.coefficients()[["name", "value", "lo95", "hi95", "fitted", "used_by_energy", "meaning"]],
                        title="Coefficients (95% intervals)"))
    prov = d.get("provenance", {})
    for k in ("data", "rows", "seed", "created", "command", "note"):
        if k in prov:
            console.print(plain(f"{k}: {prov[k]}", 2000), highlight=False)
    metrics = prov.get("train_metrics")
    if isinstance(metrics, dict):
        console.print(plain("train metrics: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, (int, float)) else f"{k} {v}"
                                                          for k, v in metrics.items()), 2000), highlight=False)
    rec = prov.get("recalibrated_from")
    if isinstance(rec, dict):
        refit = rec.get("refit", [])
        console.print(plain(f"recalibrated from {rec.get('file')} (refit: "
                            f"{', '.join(map(str, refit)) if isinstance(refit, list) else refit})", 2000), highlight=False)
    if latex:
        console.print(plain(formula_latex(model)), highlight=False)
