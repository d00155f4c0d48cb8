"""Write the evaluation report: Markdown, self-contained HTML, PNG figures and results.json."""
from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..evaluation import summary as S
from ..io import atomic_write_bytes, atomic_write_text
from .tables import html_table, markdown_table


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.floating, float)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.bool_):
        return bool(o)
    return o


def sections(res: dict, sets: dict | None = None) -> list[dict]:
    """The report as a list of sections: title, text, tables and figures (PNG bytes)."""
    from .plots_eval import learning_plot, measured_pareto_plot, parity_plot, regret_plot

    p = res["plan"]
    out = []
    data = pd.DataFrame([{"dataset": k, **v, "gpus": ", ".join(v["gpus"])} for k, v in res["data"].items()])
    out.append({"title": "Data", "text": (
        "Real public measurements read from the data folder (never copied): ML.ENERGY v3 and v2, and the "
        "project's own H100 prefill/decode file. ML.ENERGY records no prompt length per configuration; the "
        "task's documented assumption is used (src/energylens/catalog/data/tasks.toml)."), "tables": [data]})
    out.append({"title": "Targets", "text": "Each target of the evaluation issue, with what this run measured.",
                "tables": [S.targets(res)]})
    out.append({"title": "Headline: 50 measurements", "text": (
        f"Top-1 selection accuracy and energy MAPE of every method trained on {p['n_train']} measurements, "
        f"averaged over {p['seeds']} seeds and over every dataset x scenario kind. Test scenarios are chosen first; "
        "training rows are drawn only from configurations outside them."), "tables": [S.headline(res["selection"])]})
    if res.get("random_split"):
        out.append({"title": "Energy MAPE at 50 random training rows", "text": (
            f"{p['n_train']} rows drawn at random, every other row tested, {p['seeds']} seeds."),
            "tables": [S.simple_mean(res["random_split"], ["dataset", "method"], ("mape", "mdape"))]})
    out.append({"title": "Selection scenarios in detail", "text": (
        "parallelism: fixed model, task, GPU and batch. hardware: fixed model, task and batch; GPU type and count "
        "vary. slo: fixed model and task; every deployment meeting an ITL SLO at the 25th/50th/75th percentile "
        "of the group competes. `scenarios` is the mean number of test scenarios per seed. Selection is judged "
        "on measured energy per output token."), "tables": [S.selection_table(res["selection"]).drop(columns=["n_train"])],
        "figures": [("Per-scenario regret", regret_plot(res["selection"]))]})
    curve = S.learning_table(res["learning_curve"])
    out.append({"title": "Learning curves", "text": (
        f"Parallelism-choice scenarios, n = {', '.join(map(str, p['curve_sizes']))} training measurements, "
        f"{p['curve_seeds']} seeds. `n_to_match`: the smallest n at which a method's MAPE is no worse than "
        "EnergyLens at n = 50 (empty: not reached)."), "tables": [S.samples_to_match(curve), curve],
        "figures": [("Learning curves", learning_plot(curve))]})
    out.append({"title": "Unseen batch sizes", "text": "Trained on every configuration with batch <= 64, tested on batch >= 128.",
                "tables": [S.simple_mean(res["unseen_batch"], ["dataset", "method"], ("mape", "mdape"))]})
    out.append({"title": "Unseen hardware", "text": (
        "Trained on every configuration of one GPU type, tested on another. With 5 calibration measurements of "
        "the target GPU, EnergyLens refits only its hardware/engine coefficients from them (`fit --from`); the "
        "baselines add them to their training set."),
        "tables": [S.simple_mean(res["unseen_hardware"], ["dataset", "source_gpu", "target_gpu", "calibration", "method"],
                                 ("mape", "mdape"))]})
    out.append({"title": "Leave one model family out", "text": "Trained on every other organisation's models.",
                "tables": [S.simple_mean(res["leave_family_out"], ["dataset", "family", "method"], ("mape", "top1"))]})
    out.append({"title": "Latency-optimal vs energy-optimal", "text": (
        "Share of scenarios where the configuration with the lowest measured ITL is not the one with the lowest "
        "measured energy per token, and the energy it costs."), "tables": [pd.DataFrame(res["latency_vs_energy"])]})
    if res.get("planned_vs_random"):
        out.append({"title": "Planned vs random choice of 50 measurements", "text": (
            "EnergyLens fitted on 50 configurations chosen by the profiling planner (greedy D-optimal design on "
            "the closed form's sensitivities at the physics priors; it sees configurations, not measurements) "
            "or chosen at random; MAPE on every other configuration."),
            "tables": [S.simple_mean(res["planned_vs_random"], ["dataset", "selection"], ("mape",))]})
    if res.get("residuals"):
        r = pd.DataFrame(res["residuals"])
        out.append({"title": "Where one formula misses: residuals per model, GPU and task", "text": (
            "EnergyLens fitted on every row of each dataset (in sample). A median ratio far from 1 for one group "
            "while its neighbours sit near 1 is a per-model or per-GPU software effect no shared formula carries."),
            "tables": [r[r["by"] == "gpu"].drop(columns="by"), r[r["by"] == "task"].drop(columns="by"),
                       r[r["by"] == "model"].drop(columns="by").sort_values("mape", ascending=False)]})
    if "prefill_decode_lomo" in res:
        lomo = pd.DataFrame(res["prefill_decode_lomo"])
        piv = lomo.pivot_table(index=["held_out", "method"], columns="target", values="mape").reset_index()
        piv = piv.rename(columns={t: f"{t}_mape" for t in ("energy_request", "prefill", "decode", "ttft", "itl")})
        out.append({"title": "Prefill and decode: leave one model out (gpu-prefill-decode, H100)", "text": (
            "Fitted on two of the three models, predicting the third. Random forest and XGBoost get the same rows "
            "and descriptors, one regressor per target. " + res.get("prefill_decode_unseen_gpu", "")),
            "tables": [piv]})
    figs = [("Held-out parity at n = 50", parity_plot(res["parity"]))]
    if sets:
        for d in ("mlenergy-v3", "mlenergy-v2"):
            if d in sets:
                figs.append((f"Measured energy vs latency, {d}", measured_pareto_plot(sets[d])))
    out.append({"title": "Figures", "text": "", "figures": figs})
    return out


def write_report(res: dict, out_dir, sets=None, command: str = "") -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    secs = sections(res, sets)
    md = ["# EnergyLens evaluation report", "",
          f"Command: `{command}`" if command else "", f"Run time: {res.get('elapsed_s', 0):.0f} s", ""]
    body = [f"<h1>EnergyLens evaluation report</h1><p>Command: <code>{html.escape(command)}</code> "
            f"&middot; run time {res.get('elapsed_s', 0):.0f} s</p>"]
    k = 0
    for s in secs:
        md += [f"## {s['title']}", "", s.get("text", ""), ""]
        body.append(f"<h2>{html.escape(s['title'])}</h2><p>{html.escape(s.get('text', ''))}</p>")
        for t in s.get("tables", []):
            md += [markdown_table(t), ""]
            body.append(html_table(t))
        for title, png in s.get("figures", []):
            if png is None:
                continue
            k += 1
            name = f"figure{k}.png"
            atomic_write_bytes(out / name, png)
            md += [f"![{title}]({name})", ""]
            b64 = base64.b64encode(png).decode()
            body.append(f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{b64}'/>"
                        f"<figcaption>{html.escape(title)}</figcaption></figure>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table.t{border-collapse:collapse;margin:.6em 0;font-size:13px}"
             "table.t td,table.t th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}"
             "img{max-width:100%}figcaption{font-size:12px;color:#555}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>EnergyLens evaluation</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")
    atomic_write_text(out / "report.md", "\n".join(md))
    atomic_write_text(out / "report.html", page)
    slim = {k: v for k, v in res.items() if k != "parity"}
    atomic_write_text(out / "results.json", json.dumps(_jsonable(slim), indent=1))
    return {"markdown": str(out / "report.md"), "html": str(out / "report.html"), "json": str(out / "results.json")}
