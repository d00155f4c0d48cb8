"""Write the evaluation report: Markdown, self-contained HTML, PNG figures and results.json."""
from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..baselines import RANKERS, REGISTRY
from ..evaluation import summary as S
from ..io import atomic_write_bytes, atomic_write_text
from .plots_eval import learning_plot, measured_pareto_plot, parity_plot, regret_plot
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


def _verdict(res: dict) -> str:
    """One paragraph: what the run shows, in numbers this run produced."""
    head = S.headline(res.get("selection", []))
    if head.empty:
        return "No selection results in this run."
    el = head[head["method"] == "energylens"]
    if el.empty:
        return "EnergyLens was not among the methods of this run."
    el = el.iloc[0]
    others = head[head["method"] != "energylens"].sort_values("top1", ascending=False)
    best = others.iloc[0] if len(others) else None
    rnd = head[head["method"] == "random"]
    t = S.targets(res)
    met = int(t["met"].sum()) if not t.empty else 0
    text = (f"Verdict: choosing among {el['candidates']:.1f} measured deployments per scenario from "
            f"{res['plan']['n_train']} measurements, EnergyLens picks the energy-optimal one in {100 * el['top1']:.1f}% "
            f"of scenarios (within 2%: {100 * el['top1_2pct']:.1f}%; regret <= 5% in {100 * el['regret_le_5pct']:.1f}%)")
    if best is not None:
        text += f", against {100 * best['top1']:.1f}% for the best other method ({best['method']})"
    if len(rnd):
        text += f" and {100 * rnd['top1'].iloc[0]:.1f}% for a random pick"
    cells = S.beats_every_baseline(res.get("selection", []))
    behind = cells[~cells["above_by_more_than_spread"]] if not cells.empty else cells
    for r in behind.itertuples():
        text += (f". In the {r.dataset} {r.kind} cell EnergyLens does not lead by more than the seed-to-seed spread: "
                 f"{100 * r.energylens_top1:.1f}% against {100 * r.best_other_top1:.1f}% for {r.best_other}")
    text += f". {met} of {len(t)} accuracy targets are met; the Targets section lists each with its measured value."
    return text


def _methods(res: dict) -> list[dict]:
    seen = sorted({r["method"] for r in res.get("selection", [])} | {r["method"] for r in res.get("new_engine", [])
                                                                      if r["method"] in REGISTRY})
    return [{"method": m, "label": getattr(REGISTRY.get(m), "label", m), "ranks_only": m in RANKERS} for m in seen]


def _cells(res: dict) -> list[dict]:
    """Candidates per test scenario of every selection cell (seed 0, the same for every method)."""
    out, done = [], set()
    for r in res.get("selection", []):
        key = (r["dataset"], r["kind"], r["seed"])
        if key in done or "candidates_per_scenario" not in r:
            continue
        done.add(key)
        out.append({"dataset": r["dataset"], "kind": r["kind"], "seed": r["seed"],
                    "candidates_per_scenario": r["candidates_per_scenario"]})
    return out


def sections(res: dict, sets: dict | None = None) -> list[dict]:
    """The report as a list of sections: title, text, tables and figures (PNG bytes)."""
    p = res["plan"]
    out = []
    data = pd.DataFrame([{"dataset": k, **v, "gpus": ", ".join(v["gpus"])} for k, v in res["data"].items()])
    out.append({"title": "Data", "text": (
        "Real public measurements read from the data folder (never copied): ML.ENERGY v3 and v2, Splitwise, "
        "LLM-Inference-Bench, and an H100 measurement with prefill and decode energy measured separately. "
        "ML.ENERGY records no prompt length per configuration; each task's documented assumption is used "
        "(src/energylens/catalog/data/tasks.toml)."), "tables": [data]})
    out.append({"title": "Targets", "text": "Each accuracy target, with what this run measured (met or not).",
                "tables": [S.targets(res)]})
    out.append({"title": "Headline: choosing a deployment from 50 measurements", "text": (
        f"A scenario is one model and workload; every measured deployment (GPU type, count, layout, batch) that "
        f"meets an ITL SLO competes. Each method is trained on {p['n_train']} measurements drawn only outside the "
        f"test scenarios, {p['seeds']} seeds; cells weighted by their scenario count. Rules of thumb and the random "
        "pick fit nothing; the black boxes choose their target and depth by cross-validation inside the training "
        "rows."), "tables": [S.headline(res["selection"])]})
    if res.get("random_split"):
        out.append({"title": "Energy MAPE at 50 random training rows", "text": (
            f"{p['n_train']} rows drawn at random, every other row tested, {p['seeds']} seeds."),
            "tables": [S.simple_mean(res["random_split"], ["dataset", "method"], ("mape", "mdape"))]})
    out.append({"title": "Every scenario cell", "text": (
        "deployment: fixed model and task, every deployment meeting an ITL SLO at the 25th/50th/75th percentile "
        "of the group. parallelism: fixed model, task, GPU and batch (often two candidates). hardware: fixed model, "
        "task and batch; GPU type and count vary. `scenarios`: test scenarios per seed; `candidates`: distinct "
        "configurations per scenario; `random_top1`: the chance a random pick is right; `top1_sd`: spread over "
        "seeds; `regret_j`: energy per request lost against the measured optimum. Judged on measured energy per "
        "output token."), "tables": [S.selection_table(res["selection"]).drop(columns=["n_train"]),
                                     S.beats_every_baseline(res["selection"])],
        "figures": [("Per-scenario regret", regret_plot(res["selection"]))]})
    curve = S.learning_table(res["learning_curve"])
    out.append({"title": "Learning curves", "text": (
        f"Deployment scenarios, n = {', '.join(map(str, p['curve_sizes']))} training measurements, "
        f"{p['curve_seeds']} seeds. `n_to_match`: the smallest n at which a method's MAPE is no worse than "
        "EnergyLens at n = 50 (empty: not reached)."), "tables": [S.samples_to_match(curve), curve],
        "figures": [("Learning curves", learning_plot(curve))]})
    if res.get("unseen_batch"):
        out.append({"title": "Unseen batch sizes", "text": "Trained on every configuration with batch <= 64, tested on batch >= 128.",
                    "tables": [S.simple_mean(res["unseen_batch"], ["dataset", "method"], ("mape", "mdape"))]})
    out.append({"title": "Unseen hardware", "text": (
        "Trained on every configuration of one GPU type, tested on another. With 5 calibration measurements of "
        "the target GPU, EnergyLens refits only its hardware/engine coefficients from them (`fit --from`); the "
        "baselines add them to their training set."),
        "tables": [S.simple_mean(res["unseen_hardware"], ["dataset", "source_gpu", "target_gpu", "calibration", "method"],
                                 ("mape", "mdape"))]})
    if res.get("leave_family_out"):
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
    if res.get("new_engine"):
        out.insert(3, {"title": "A new serving engine: structure chosen on 50 of its rows", "text": (
            "Each dataset alone, as an engine never seen: EnergyLens chooses its structure by cross-validation on "
            "50 rows of randomly drawn configurations (nothing else tuned on it) and is tested on every row of "
            "another configuration (repeated measurements stay on one side); the last line per "
            "dataset fits every row, judged in sample. Rows whose mean power per GPU is within 25% of idle are "
            "counted separately: their energy is suspect."), "tables": [S.new_engine_table(res["new_engine"])]})
    if res.get("leave_dataset_out"):
        out.append({"title": "Leave one dataset out", "text": (
            "Trained on every other dataset (each source its own engine), tested on the held-out one: with none "
            "of its rows, and with 5 of them (EnergyLens recalibrates the fit on the others; the black boxes add "
            "them to their training rows; 5 seeds for the draw)."),
            "tables": [S.simple_mean(res["leave_dataset_out"], ["held_out", "calibration", "method"], ("mape", "mdape"))]})
    if res.get("failures"):
        f = res["failures"]
        per = pd.DataFrame([{"method": m, **v} for m, v in f["per_method"].items()])
        out.append({"title": "Failed fits", "text": (
            f"Every fit attempted, per method, and those that raised an error (limit: {100 * f['max_share']:.0f}% "
            "per method; the run fails beyond it). The errors are in results.json."), "tables": [per]})
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
    verdict = _verdict(res)
    anchors = [re.sub(r"[^a-z0-9]+", "-", s["title"].lower()).strip("-") for s in secs]
    md = ["# EnergyLens evaluation report", "", verdict, "",
          f"Command: `{command}`" if command else "", f"Run time: {res.get('elapsed_s', 0):.0f} s", "",
          "Contents: " + " · ".join(f"[{s['title']}](#{a})" for s, a in zip(secs, anchors)), ""]
    body = [f"<h1>EnergyLens evaluation report</h1><p>{html.escape(verdict)}</p><p>Command: <code>{html.escape(command)}</code> "
            f"&middot; run time {res.get('elapsed_s', 0):.0f} s</p><nav><b>Contents</b><ol>"
            + "".join(f"<li><a href='#{a}'>{html.escape(s['title'])}</a></li>" for s, a in zip(secs, anchors))
            + "</ol></nav>"]
    k = 0
    for s, anchor in zip(secs, anchors):
        md += [f"## {s['title']}", "", s.get("text", ""), ""]
        body.append(f"<h2 id='{anchor}'>{html.escape(s['title'])}</h2><p>{html.escape(s.get('text', ''))}</p>")
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
    slim["methods"] = _methods(res)
    slim["cells"] = _cells(res)
    atomic_write_text(out / "results.json", json.dumps(_jsonable(slim), indent=1))
    return {"markdown": str(out / "report.md"), "html": str(out / "report.html"), "json": str(out / "results.json")}
