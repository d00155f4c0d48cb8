"""`energylens fit | predict | explain | show`: the closed-form model from the command line."""
from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from ..data.schema import load_many
from ..errors import DataError, EnergyLensError
from ..model.terms import GROUP_LABELS, GROUPS
from ._console import console, constant_first, fmt, metrics_text, percent, plain, plural, print_table
from .declarations import ExplainOptions, FitOptions, PredictOptions, ShowOptions, command



def _load(model_file: Path, where: str = "the first argument", usage: str = "energylens COMMAND MODEL_FILE CONFIGS"):
    from ..model.modelfile import load_model
    from ._file_kinds import check_model_argument

    check_model_argument(model_file, where, usage)
    return load_model(model_file)


def _load_pair(model_file: Path, configs: Path, command: str):
    """The model of `command MODEL_FILE CONFIGS`, after checking that neither argument is the other's kind."""
    from ._file_kinds import check_table_argument

    usage = f"energylens {command} MODEL_FILE CONFIGS" + (" -o OUTPUT" if command == "predict" else "")
    model = _load(model_file, "the first argument", usage)
    check_table_argument(configs, "the second argument", usage)
    return model


FROM_USAGE = "energylens fit DATA... -o OUTPUT --from MODEL_FILE"


@command(FitOptions)
def fit(data, output, samples, seed, base, choose, note, engine_column, structure, discover_seconds):
    """Fit the closed-form energy and time models and write a JSON model file."""
    from ._paths import check_output
    check_output(output, inputs=[*data, base, Path(structure)])
    from ..model.estimator import CHOICES, EnergyLensRegressor, recalibrate
    from ..model.modelfile import save_model


    if base is not None:  # before the data are read: a misspelt 'default' is told at once
        from ._file_kinds import check_model_argument
        check_model_argument(base, "--from", FROM_USAGE)
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
    if choose not in CHOICES:
        raise DataError(f"--choose must be one of {', '.join(CHOICES)}, got {choose[:40]!r}")
    if base is None and choose != "auto":
        raise DataError("--choose needs --from (the model to compare with)")
    comparison = None
    if base is not None:
        base_model = _load(base, "--from", FROM_USAGE)  # 'default' included
        model, comparison, refit = recalibrate(base_model, df, random_state=seed, choice=choose)
        provenance["recalibrated_from"] = {"file": str(base), "refit": list(refit), "kept": comparison["kept"],
                                           "comparison": {k: comparison[k] for k in ("base", "recalibrate", "fresh")},
                                           "base_provenance": getattr(base_model, "provenance_", {})}
    else:
        if engine_column is not None and engine_column not in df.columns:
            raise DataError(f"--engine-column '{engine_column}' is not a column of {', '.join(map(str, data))}")
        found = _discovered(df, seed, discover_seconds) if structure_arg == "auto" else []
        model = EnergyLensRegressor(structure=structure_arg, random_state=seed, engine_column=engine_column,
                                    candidates=tuple(found)).fit(df)
        if found:
            model.cv_ = {**model.cv_, "discovered": len(found)}
    save_model(model, output, provenance)
    if comparison is not None:
        _report_comparison(comparison, len(df), choose)
    _report_fit(model, len(df), output)


def _discovered(df, seed: int, seconds: float) -> list:
    """Candidate structures from symbolic regression within `seconds` (none when 0, without pyoperon, with too few
    rows, or when nothing it finds fits the budget of fitted numbers): `fit` compares them with the built-in ones."""
    if not seconds:
        return []
    from ..discovery.search import available, discover

    if not available():
        return []
    try:
        return discover(df, seed=seed, time_budget=seconds, population_size=100, max_length=11).candidates
    except EnergyLensError:  # too few rows with energy, nothing varies: the built-in structures compete alone
        return []


def _report_comparison(comparison: dict, rows: int, choose: str) -> None:
    """`fit --from`: the three candidates' errors on the user's rows and which one was kept."""
    from ..model.estimator import KEPT_AS  # the estimator (scikit-learn) loads only for the commands that fit

    parts = []
    for name in ("base", "recalibrate", "fresh"):
        cv = comparison.get(name)
        if cv is None or cv.get("mape") is None:
            parts.append(f"{KEPT_AS[name]}: needs more rows")
            continue
        how = "on every row (nothing fitted)" if name == "base" else f"{cv.get('folds')}-fold CV"
        parts.append(f"{KEPT_AS[name]} {percent(cv['mape'])} MAPE ({how})")
    why = "the lowest cross-validated error" if choose == "auto" else "--choose"
    console.print(f"compared on {plural(rows, 'row')}: " + "; ".join(parts) + f"; kept {KEPT_AS[comparison['kept']]} "
                  f"({why})", markup=False, highlight=False)


def _grouped_notes(notes) -> list[str]:
    """The fit's notes with the coefficients kept at their prior gathered by reason, one line each (a
    recalibration keeps most of them: one line each would bury the rest)."""
    reasons: dict[str, list[str]] = {}
    for n in notes:
        if n.kind == "kept at prior":
            reason = n.text[n.text.find("(") + 1:n.text.rfind(")")] if "(" in n.text else "held"
            reasons.setdefault(reason, []).append(n.coefficient)
    out = [n.text for n in notes if n.kind != "kept at prior"]
    out += [f"kept at their priors ({reason}): {', '.join(names)}" for reason, names in reasons.items()]
    return out


def _structure_option(value: str):
    """--structure: a built-in name, or a model file whose structure is refitted."""
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
                  f"structure '{s.name}' with {model.fitted_count()} fitted numbers behind energy (time model "
                  f"included); wrote {output}",
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
        console.print(f"  engine '{g}': {plural(e.rows, 'row')}, hardware/engine coefficients recalibrated", markup=False,
                      highlight=False)


def _print_coefficients(model) -> None:
    """The coefficient table of `show`: a 95% interval only where the data identified the coefficient."""
    from ..model.identification import NOT_IDENTIFIED, rule_text

    coefs = model.coefficients()
    view = coefs[["name", "value"]].copy()
    view["95% interval"] = [f"{fmt(r.lo95)} to {fmt(r.hi95)}" if r.identified else r.identification
                            for r in coefs.itertuples()]
    view["kind"] = coefs["kind"]
    view["meaning"] = coefs["meaning"]
    print_table(view, title="Coefficients (95% intervals where the data identified them)", drop_order=("kind",),
                compact=False, how="the model file holds them")
    weak = coefs[coefs["status"] == NOT_IDENTIFIED]
    if len(weak):
        console.print(plain(f"not identified by the training rows: {', '.join(weak['name'])}; {rule_text()}"),
                      highlight=False)


@command(PredictOptions)
def predict(model_file, configs, output):
    """Predict energy per request and per token, the prefill/decode split, TTFT and ITL, mean power, the 95%
    interval of energy and whether each row extrapolates beyond the model's training domain."""
    from ._paths import check_output
    check_output(output, inputs=[model_file, configs])
    from ..data.stream import predict_file

    model = _load_pair(model_file, configs, "predict")
    counts: dict = {}
    rows = predict_file(model, configs, output, counts=counts)  # in chunks: memory bounded whatever the file's size
    outside = counts.get("extrapolating", 0)
    why = "; its column extrapolation says why" if outside else ""
    console.print(f"predicted {plural(rows, 'configuration')} ({outside} outside the model's training domain); "
                  f"wrote {output}{why}")


# What identifies a configuration in explain's output ("row" is its 1-based row in the file).
EXPLAIN_IDS = ("row", "model", "gpu", "num_gpus", "tp", "pp", "ep", "dp", "precision", "batch_size", "input_tokens",
               "output_tokens")


@command(ExplainOptions)
def explain(model_file, configs, rows, json_out, verbose):
    """Energy per request broken down by where it goes (compute, memory, TP, EP, PP bubbles, overhead, idle GPUs)
    in J and %, and the prefill phase as `predict` gives it; shares resting on a coefficient the data did not
    identify are flagged, and so are predictions outside the model's training data (note `extrap`)."""
    from ..data.stream import read_head

    model = _load_pair(model_file, configs, "explain")
    df = read_head(configs, rows)  # reads (and validates) only the rows it shows
    shown = _explained(model, df)
    if json_out:
        typer.echo(json.dumps(_records(shown), indent=2))
        return
    view, title, notes = _explain_table(model, shown, verbose)
    print_table(view, title=title, drop_order=_explain_drop_order(view), compact=True, footer=notes)


# What explain's label column is called, and the columns that always stay: the row's identity, its energy and
# its note (`extrap` where the prediction leaves the model's training domain).
EXPLAIN_LABEL = "configuration"
EXPLAIN_NOTE = "note"
EXPLAIN_KEEP = ("#", EXPLAIN_LABEL, "J/req", EXPLAIN_NOTE)


def _explain_drop_order(view) -> list[str]:
    """explain's columns in the order a narrow terminal leaves them out: those equal on every shown row, then the
    prefill-phase figures, then the term shares from the smallest largest share up; the row's number, its
    configuration label and J/req stay."""
    shares = [c for c in view.columns if c.endswith("%") and c not in ("pf%", "meas. pf%")]
    magnitude = {c: max((float(str(v).rstrip("*")) for v in view[c]), default=0.0) for c in shares}
    order = ["pf J", "meas. pf%", "pf%", *sorted(shares, key=lambda c: magnitude[c])]
    return constant_first(view, [c for c in order if c in view.columns and c not in EXPLAIN_KEEP])


def _label(row, with_model: bool, with_precision: bool, with_dp: bool) -> str:
    """'H100-SXM x4 tp2·pp2, batch 16, 512→256 tok': what tells a configuration apart, in one short label
    (the model first when the rows' models differ, the precision when theirs differ)."""
    from ._recommend_view import layout

    dp = int(row["dp"]) if with_dp and "dp" in row and row["dp"] == row["dp"] else 1
    lay = layout(row["tp"], row["pp"], row["ep"] if row["ep"] == row["ep"] else 1, dp)
    parts = [f"{str(row['model']).split('/')[-1]} " if with_model else "",
             f"{row['gpu']} x{int(row['num_gpus'])}{'' if lay == 'single' else ' ' + lay}",
             f", batch {int(row['batch_size'])}, {fmt(row['input_tokens'])}→{fmt(row['output_tokens'])} tok",
             f", {row['precision']}" if with_precision else ""]
    return "".join(parts)


def _explained(model, df):
    """explain's rows: what identifies each configuration, the model's breakdown, the measured prefill share."""
    ex = model.explain(df)
    # the very figures of predict: the prefill phase, the 95% interval and the training-domain flag
    phases = model.predict_frame(df)[["pred_prefill_energy_j", "pred_decode_energy_j", "pred_energy_request_lo_j",
                                      "pred_energy_request_hi_j", "extrapolation"]]
    shown = df.assign(row=df.index + 1)[[c for c in EXPLAIN_IDS if c in df.columns or c == "row"]].copy()
    for c in [*ex.columns, *phases.columns]:
        shown[c] = (ex[c] if c in ex else phases[c]).to_numpy()
    if {"prefill_energy_j", "decode_energy_j"} <= set(df.columns):
        meas = df["prefill_energy_j"] / (df["prefill_energy_j"] + df["decode_energy_j"])
        shown["measured_prefill_share_pct"] = (100 * meas).to_numpy()
    return shown


def _records(shown) -> list[dict]:
    """JSON records: plain numbers (full precision), null for missing values."""
    clean = lambda v: None if isinstance(v, float) and not math.isfinite(v) else v.item() if hasattr(v, "item") else v
    return [{k: clean(v) for k, v in r.items()} for r in shown.to_dict(orient="records")]


EXPLAIN_DEFINITIONS = ("configuration: GPU x count, the parallel degrees above 1 (tp, pp, ep, dp), batch (concurrent "
                       "requests), prompt→output tokens; J/req: predicted energy per request, all GPUs; <group>%: "
                       "share of J/req by where it goes (docs/MODEL.md): static power over each part of the time plus "
                       "the dynamic energy of that work (compute, memory, TP and EP collectives, pipeline bubbles, "
                       "launch and host overhead, idle GPUs of replicas without a request); pf J and pf%: the prefill "
                       "phase, as predict's pred_prefill_energy_j; meas. pf%: the measured prefill share, where the "
                       "file has it; note extrap: the prediction is outside the model's training data (why: the "
                       "lines above; --json: extrapolation, with the 95% interval pred_energy_request_lo_j/hi_j)")


def _explain_table(model, shown, verbose: bool = False):
    """(table, title, lines under it) of explain: each row's identity in one label, its energy, the shares and,
    where a prediction extrapolates, a note `extrap` (the reasons with `verbose`)."""
    import pandas as pd

    from ..model.identification import UNSUPPORTED
    from ._recommend_view import EXTRAP, EXTRAP_MEANING

    def varies(col):
        return col in shown and shown[col].nunique(dropna=False) > 1

    models = shown["model"].astype(str).unique()
    label = [_label(r, varies("model"), varies("precision"), "dp" in shown) for _, r in shown.iterrows()]
    view = pd.DataFrame({"#": shown["row"].to_numpy(), EXPLAIN_LABEL: label, "J/req": shown["total_j"].to_numpy(),
                         "pf J": shown["pred_prefill_energy_j"].to_numpy()})
    flagged = shown["shares_not_identified"].tolist()
    mark = lambda share, col: [f"{v:.1f}*" if share in f else f"{v:.1f}" for v, f in zip(shown[col], flagged)]
    for g in GROUPS:  # where the energy goes (both phases together); the phase split is beside them
        if (shown[f"{g}_pct"].fillna(0) != 0).any():
            view[f"{GROUP_LABELS[g]}%"] = mark(g, f"{g}_pct")
    view["pf%"] = mark("prefill_share", "prefill_share_pct")
    if "measured_prefill_share_pct" in shown:
        view["meas. pf%"] = shown["measured_prefill_share_pct"].round(1).to_numpy()
    why = shown["extrapolation"].fillna("").astype(str).str.strip() if "extrapolation" in shown else None
    if why is not None and (why != "").any():  # the column only where a row extrapolates: nothing to say otherwise
        view[EXPLAIN_NOTE] = [EXTRAP if w else "" for w in why]
    title = "Energy per request by where it goes, % of J/req" + (f": {models[0]}" if len(models) == 1 else "")
    notes = []
    if why is not None and (why != "").any():
        if verbose:
            rows: dict[str, list[str]] = {}
            for n, w in zip(shown["row"], why):
                if w:
                    rows.setdefault(w, []).append(f"#{n}")
            notes += [f"{EXTRAP} {', '.join(r)}: {w}." for w, r in rows.items()]
        else:
            notes.append(f"{EXTRAP}: {EXTRAP_MEANING} (--verbose: why).")
    hit = {g for f in flagged for g in f}
    if hit:  # the coefficients behind the flags: those scaling a flagged group
        groups_of = {c.name: set(c.groups) for c in model.structure_.coefficients}
        coefs = model.coefficients()
        touches = coefs["name"].map(lambda n: bool(groups_of.get(n, set()) & hit))
        weak = coefs[touches & coefs["status"].isin(UNSUPPORTED)]
        if verbose:
            notes.append("*: rests on a coefficient the data did not identify: "
                         + "; ".join(f"{r.name} ({r.identification})" for r in weak.itertuples()))
        else:
            notes.append(f"*: rests on a coefficient the data did not identify: {', '.join(weak['name'])}.")
    notes.append(f"{EXPLAIN_DEFINITIONS}." if verbose else "pf J, pf%: the prefill phase (predict's prefill "
                 "energy); the other shares: where the energy goes; --verbose: definitions, --json: every field.")
    return view, title, notes


@command(ShowOptions)
def show(model_file, latex):
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
                        "energy prediction (the time model's included: energy is power over the predicted time)"),
                  highlight=False)
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
        console.print(plain(f"from {rec.get('file')}: kept {rec.get('kept', 'recalibrate')} (refit: "
                            f"{', '.join(map(str, refit)) if isinstance(refit, list) and refit else 'none'})", 2000),
                      highlight=False)
    if latex:  # copy-paste text: plain lines, never hard-wrapped mid-subscript
        engine = model.default_engine()
        if engine:  # the coefficients `recommend` prices with by default, said in a LaTeX comment
            typer.echo(plain(f"% coefficients of engine '{engine}' (recommend's default; the model has "
                             f"{len(model.engines_)} engines)").plain)
        typer.echo(plain(formula_latex(model, engine=engine)).plain)
