"""Benchmarks of recommend at a load (not tests): speed, the simulation at saturation against ML.ENERGY v3, and the
step times the simulation runs on against GenZ and measured TTFT/ITL.

usage: python benchmarks/bench_load.py [--data ../shared/data] [--speed] [--v3] [--steps]
                                       [--genz-python /tmp/genz-venv/bin/python] [--out results.json]

--speed: `recommend --trace` (the Azure 2023 conversation trace, 19,366 requests in one hour) over every layout
    of up to 8 GPUs of two types (H100, B200), for a dense 8B, a dense 70B and a MoE 30B model: in process after
    one warm-up call (the compiled loop loaded), and end to end as a command (a fresh process).
--v3: every ML.ENERGY v3 configuration served as its saturating benchmark serves it: a closed loop at
    max_num_seqs requests in flight in all (v3's DP x EP runs measure a running batch of about max_num_seqs,
    not dp times it; separate data-parallel engines share them), prompts of the task's assumed length
    (data/importers, as the model's features), output lengths drawn from the configuration's own histogram
    (seeded), vLLM's token budget, the KV cache the features allow. The running batch (time average of requests
    per step, summed over ranks) and output throughput in the steady state (until the last request is issued)
    against the measured avg_batch_size and output_throughput_tokens_per_sec, MAPE per task. The time model is
    never fitted on the row it predicts: 5 folds grouped by model, each fitted (the shipped structure,
    coefficients refitted) on the other folds' v3 rows and the project's H100 file.
--steps: batch prefill and decode step times of the simulation's StepTime (recommendation/load.py, from the
    fitted formula) and of GenZ (`genz-llm`, run through --genz-python: see benchmarks/genz_steps.py) against
    measured ones, per dataset: Splitwise's prompt_time and token_time (the shipped model: never fitted on
    Splitwise), the H100 file's ttft_s and itl_s (a model fitted on v3 only) and v3's median ITL (the fold
    models above; decode step at the measured avg_batch_size). GenZ gets the same hardware figures
    (the hardware catalog: peak dense FLOP/s, HBM GB and GB/s, link GB/s / 2 as its one-way ICN) and its
    own defaults otherwise (system efficiency 1); models GenZ ships are used by its names, BLOOM-176B from
    its public config; v3 models GenZ does not ship are left out of GenZ's column.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _data(arg) -> Path:
    return Path(arg or os.environ.get("ENERGYLENS_DATA", ROOT.parent / "shared" / "data"))


# ------------------------------------------------------------------------------------------------ speed

SPEED_MODELS = ("meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-70B", "Qwen/Qwen3-30B-A3B")


def speed(data: Path) -> list[dict]:
    from energylens import recommend

    trace = data / "azure-llm-trace-2023" / "AzureLLMInferenceTrace_conv.csv"
    if not trace.exists():
        print(f"speed: {trace} not found; skipped")
        return []
    recommend(SPEED_MODELS[0], ["H100"], max_gpus=1, rate=1)  # loads the compiled loop
    out = []
    for model in SPEED_MODELS:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            rec = recommend(model, ["H100", "B200"], max_gpus=8, trace=trace)
            times.append(time.perf_counter() - t0)
        p = rec.load.notes["per_rate"][0]
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "energylens", "recommend", "--model", model, "--gpu", "H100", "--gpu", "B200",
               "--max-gpus", "8", "--trace", str(trace)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        cli = time.perf_counter() - t0
        best = rec.load.curve.iloc[0]
        row = {"model": model, "layouts": p["layouts"], "simulated": p["simulated"], "pruned": p["pruned"],
               "served": p["served"], "in_process_s": statistics.median(times), "command_s": cli,
               "exit": done.returncode, "best": f"{best['deployment']} x{int(best['replicas'])}",
               "j_per_request": float(best["energy_request_j"])}
        out.append(row)
        print(f"speed {model}: {row['layouts']} layouts ({row['simulated']} simulated, {row['pruned']} pruned): "
              f"{row['in_process_s']:.2f} s in process (median of 3), {cli:.2f} s as a command (exit {done.returncode}); "
              f"best {row['best']}, {row['j_per_request']:.1f} J/request")
    return out


# ------------------------------------------------------------------------------------------------ v3


def v3_table(data: Path) -> pd.DataFrame:
    """v3 rows in the profiling schema (descriptors filled) with each configuration's output-length histogram."""
    from energylens.data.importers.mlenergy_v3 import read
    from energylens.data.schema import validate

    raw = read(data / "mlenergy-v3")
    hist = {}
    for f in sorted((data / "mlenergy-v3" / "models").glob("*__*.json")):
        d = json.loads(f.read_text())
        for c in d["configurations"]:
            h = c.get("output_length_distribution") or d.get("output_length_distribution")
            if isinstance(h, str):
                import ast

                h = ast.literal_eval(h)
            par = c["parallelization"]
            key = (f.name, c["gpu_model"], int(c["num_gpus"]), int(par.get("tensor_parallel", 1)),
                   int(par.get("expert_parallel", 1)), int(par.get("data_parallel", 1)), int(c["max_num_seqs"]))
            hist[key] = h
    df = validate(raw, require_energy=False)
    keys = zip(raw["source_file"], raw["gpu"], raw["num_gpus"], raw["tp"], raw["ep"], raw["dp"], raw["batch_size"])
    df["_hist"] = [hist.get(tuple(k)) for k in keys]
    df["_avg_batch"] = raw["avg_batch_size"].to_numpy(float)
    df["_throughput"] = raw["throughput_tok_s"].to_numpy(float)
    df["_itl_median_s"] = raw["itl_s"].to_numpy(float)
    return df


def fold_models(v3: pd.DataFrame, data: Path, folds: int = 5, seed: int = 0) -> dict:
    """{model name: (structure, coefficients)}: each fitted without that model's fold (other v3 models + H100 file)."""
    from energylens.data.schema import load_profiles
    from energylens.model.default import default_model
    from energylens.model.estimator import EnergyLensRegressor

    h100 = load_profiles(data / "gpu-prefill-decode" / "h100.csv")
    structure = default_model().structure_.without_correction_range()
    models = sorted(v3["model"].unique())
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(models))
    fold_of = {models[i]: k % folds for k, i in enumerate(order)}
    fitted = {}
    cols = [c for c in v3.columns if not c.startswith("_")]
    for k in range(folds):
        train = v3[[fold_of[m] != k for m in v3["model"]]][cols]
        est = EnergyLensRegressor(structure=structure, engine_column="source", random_state=seed)
        est.fit(pd.concat([train, h100], ignore_index=True))
        coef = est.fitted_.engines.get("mlenergy-v3", est.fitted_.shared).values
        for m, f in fold_of.items():
            if f == k:
                fitted[m] = (est.structure_, coef)
    return fitted


def _outputs(hist, mean: float, n: int, rng) -> np.ndarray:
    if not hist:
        return np.full(n, max(1, round(mean)), dtype=np.int64)
    bins, counts = np.asarray(hist["bins"], float), np.asarray(hist["counts"], float)
    k = rng.choice(len(counts), size=n, p=counts / counts.sum())
    return np.maximum(1, np.rint(rng.uniform(bins[k], bins[k + 1]))).astype(np.int64)


def saturate(row: pd.Series, structure, coef, seed: int = 0) -> dict:
    """One v3 configuration as its saturating benchmark runs it (module docstring)."""
    from energylens.recommendation.load import replica_models
    from energylens.traffic import Workload, simulate

    cols = [c for c in row.index if not c.startswith("_")]
    one = pd.DataFrame([row[cols]])
    S = int(row["batch_size"])
    m = replica_models(one, structure, coef, float(row["input_tokens"]), float(row["output_tokens"]), [S],
                       int(max(row["input_tokens"], 1)))
    if m.steps[0] is None:
        return {"error": m.layouts["reason"].iloc[0]}
    spans = int(row["ep"]) > 1 and int(row["dp"]) > 1
    replicas = 1 if spans else int(row["dp"])
    # v3's client keeps max_num_seqs requests in flight in all (its avg_batch_size of DP x EP runs is about
    # max_num_seqs, not dp times it): the closed loop runs at max_num_seqs, each data-parallel rank (if separate
    # engines) taking its share.
    concurrency = S
    n = max(2000, 4 * concurrency)
    rng = np.random.default_rng(seed)
    out = _outputs(row["_hist"], float(row["output_tokens"]), n, rng)
    w = Workload(np.zeros(n), np.full(n, max(1, int(round(row["input_tokens"])))), out, "v3")
    try:
        res = simulate(w, m.steps[0], replicas=replicas, engine=m.engines[0], concurrency=concurrency,
                       router="least_loaded", record_steps=True)
    except Exception as exc:  # noqa: BLE001 - e.g. a prompt longer than the KV cache: reported per row
        return {"error": str(exc)[:120]}
    until = float(res.workload.arrival_s[-1])
    log = res.step_log
    keep = log["start_s"] < until
    finish = res.workload.arrival_s + res.latency_s
    done = finish <= until
    batch = float(np.sum(log["requests"][keep] * log["duration_s"][keep]) / until)
    tpot = res.tpot_s[done & ~np.isnan(res.tpot_s)]
    return {"batch": batch, "throughput": float(out[done].sum() / until),
            "tpot_median_s": float(np.median(tpot)) if tpot.size else np.nan, "preemptions": int(res.preemptions.sum())}


def v3_benchmark(data: Path) -> dict:
    if not (data / "mlenergy-v3").exists():
        print("v3: data not found; skipped")
        return {}
    t0 = time.perf_counter()
    v3 = v3_table(data)
    fitted = fold_models(v3, data)
    print(f"v3: {len(v3)} configurations; 5 fold models fitted in {time.perf_counter() - t0:.1f} s")
    rows = []
    t0 = time.perf_counter()
    for i, r in v3.iterrows():
        s, c = fitted[r["model"]]
        got = saturate(r, s, c)
        rows.append({"model": r["model"], "task": r["task"], "gpu": r["gpu"], "num_gpus": int(r["num_gpus"]),
                     "tp": int(r["tp"]), "ep": int(r["ep"]), "dp": int(r["dp"]), "max_num_seqs": int(r["batch_size"]),
                     "measured_batch": r["_avg_batch"], "measured_throughput": r["_throughput"],
                     "measured_itl_median_s": r["_itl_median_s"], **got})
    res = pd.DataFrame(rows)
    print(f"v3: simulated in {time.perf_counter() - t0:.1f} s; {int(res['error'].notna().sum()) if 'error' in res else 0} "
          "configurations could not be simulated")
    ok = res[res["batch"].notna()] if "batch" in res else res.iloc[:0]

    def ape(a, b):
        return np.abs(a / b - 1)

    summary = []
    for task, g in [("all", ok), *ok.groupby("task")]:
        for label, sub in (("every config", g), ("dp = 1", g[g["dp"] == 1])):
            if not len(sub):
                continue
            summary.append({"task": task, "subset": label, "configs": len(sub),
                            "batch_mape": float(ape(sub["batch"], sub["measured_batch"]).mean()),
                            "throughput_mape": float(ape(sub["throughput"], sub["measured_throughput"]).mean()),
                            "throughput_median_ratio": float(np.median(sub["throughput"] / sub["measured_throughput"])),
                            "batch_median_ratio": float(np.median(sub["batch"] / sub["measured_batch"]))})
    s = pd.DataFrame(summary)
    print(s.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return {"rows": res.to_dict(orient="records"), "summary": summary}


# ------------------------------------------------------------------------------------------------ step times

GENZ_NAMES = {  # our model -> GenZ's entry with the same shapes (checked: layers, hidden, FFN, KV heads, vocab)
    "meta-llama/llama-2-70b-hf": "meta-llama/meta-llama-3.1-70b",  # GenZ's entry of this name holds Llama-2-70B
    "meta-llama/llama-3.1-8b": "meta-llama/meta-llama-3.1-8b",
    "meta-llama/llama-3.1-8b-instruct": "meta-llama/meta-llama-3.1-8b",
    "meta-llama/llama-3.1-70b-instruct": "meta-llama/Llama-3.1-70B",
    "meta-llama/llama-3.3-70b-instruct": "meta-llama/Llama-3.1-70B",  # same shapes
    "meta-llama/llama-3.1-405b-instruct": "meta-llama/meta-llama-3.1-405b",
    "meta-llama/llama-3.1-405b-instruct-fp8": "meta-llama/meta-llama-3.1-405b",
    "meta-llama/llama-3.2-1b": "meta-llama/Llama-3.2-1B",
    "google/gemma-3-27b-it": "google/gemma-3-27B",
    # not google/gemma-3-12b-it: GenZ's gemma-3-12B entry has other shapes (26 layers of 2304)
}
# BLOOM-176B's public config (bigscience/bloom): GenZ does not ship it.
BLOOM = {"model": "bigscience/bloom", "vocab_size": 250880, "hidden_size": 14336, "intermediate_size": 57344,
         "num_ffi": 1, "num_decoder_layers": 70, "num_attention_heads": 112, "num_key_value_heads": 112,
         "head_dim": 128, "hidden_act": "gelu"}
GENZ_BITS = {"bf16": "bf16", "fp16": "bf16", "fp8": "fp8", "mxfp4": "int4", "int4": "int4", "int8": "int8"}


def _genz_model(name: str):
    if "bloom" in name.lower():
        return BLOOM
    return GENZ_NAMES.get(name.lower())


def _ours(rows: pd.DataFrame, structure, coef, batch, prompt, context) -> tuple[np.ndarray, np.ndarray]:
    """(batch prefill s, decode step s) of each row from the simulation's StepTime built for its layout."""
    from energylens.recommendation.load import replica_models

    pf, dec = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    for i in range(len(rows)):
        one = rows.iloc[[i]]
        B, L, c = float(batch[i]), float(prompt[i]), float(context[i])
        m = replica_models(one, structure, coef, max(L, 1.0), max(2 * (c - L), 1.0), [max(int(round(B)), 1)],
                           int(max(L, 1)))
        st = m.steps[0]
        if st is None:
            continue
        tokens = B * L
        pf[i] = st(0, 0, tokens, B * L * (L + 1) / 2) if tokens < st.by_tokens.shape[1] or not st.by_tokens.size \
            else StepTimeBeyond(st, tokens, B * L * (L + 1) / 2)
        dec[i] = st(B, B * c, 0, 0)
    return pf, dec


def StepTimeBeyond(st, tokens, pairs) -> float:  # noqa: N802 - a step larger than the token table (a profiler's batch)
    """A step of more tokens than the budget the table covers: its affine part plus the table's last entry."""
    x = np.array([1.0, 0.0, 0.0, tokens, pairs])
    return float(x @ st.fixed[0] + max(x @ st.memory[0], x @ st.compute[0]) + st.by_tokens[0][-1])


def _genz(cases: list[dict], python: str | None) -> dict:
    if not python:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "cases.json", Path(tmp) / "out.json"
        src.write_text(json.dumps(cases))
        done = subprocess.run([python, str(ROOT / "benchmarks" / "genz_steps.py"), str(src), str(dst)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            print(f"GenZ could not run: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
            return {}
        return {r["id"]: r for r in json.loads(dst.read_text())}


def _system(row) -> dict:
    return {"Flops": float(row["gpu_peak_tflops"]), "Memory_size": float(row["gpu_mem_gb"]),
            "Memory_BW": 1000 * float(row["gpu_mem_bw_tbs"]), "ICN": float(row["gpu_link_gbs"]) / 2}


def step_benchmark(data: Path, genz_python: str | None) -> dict:
    from energylens.data.importers.splitwise import read as read_splitwise
    from energylens.data.schema import load_profiles, validate
    from energylens.model.default import default_model
    from energylens.model.estimator import EnergyLensRegressor

    shipped = default_model()
    sets = []
    sw_path = data / "splitwise" / "perf_model.csv"
    if sw_path.exists():
        sw = validate(read_splitwise(sw_path), require_energy=False)
        # one row per distinct configuration (the file repeats each 5 times): the mean measurement
        keys = ["model", "gpu", "tp", "batch_size", "input_tokens", "output_tokens"]
        sw = sw.groupby(keys, as_index=False, sort=False).agg(
            {**{c: "first" for c in sw.columns if c not in keys + ["ttft_s", "itl_s"]}, "ttft_s": "mean", "itl_s": "mean"})
        ctx = sw["input_tokens"] + sw["output_tokens"] / 2
        sets.append(("Splitwise (DGX-A100 rows, the ones its importer keeps; shipped model, never fitted on it)", sw, shipped.structure_,
                     shipped.fitted_.engines["mlenergy-v3"].values, sw["batch_size"], sw["input_tokens"], ctx,
                     sw["ttft_s"], sw["itl_s"]))
    h_path = data / "gpu-prefill-decode" / "h100.csv"
    if h_path.exists() and (data / "mlenergy-v3").exists():
        from energylens.data.importers.mlenergy_v3 import read as read_v3

        h = load_profiles(h_path)
        v3only = EnergyLensRegressor(structure=shipped.structure_.without_correction_range(), engine_column="source",
                                     random_state=0).fit(validate(read_v3(data / "mlenergy-v3")))
        ctx = h["input_tokens"] + h["output_tokens"] / 2
        only = v3only.fitted_.engines.get("mlenergy-v3", v3only.fitted_.shared)  # one engine: the shared set
        sets.append(("H100 file (static batches; a model fitted on v3 only)", validate(h), v3only.structure_,
                     only.values, h["batch_size"], h["input_tokens"], ctx,
                     h["ttft_s"], h["itl_s"]))
    out = {}
    for name, rows, structure, coef, batch, prompt, ctx, ttft, itl in sets:
        rows = rows.reset_index(drop=True)
        pf, dec = _ours(rows, structure, coef, batch.to_numpy(float), prompt.to_numpy(float), ctx.to_numpy(float))
        cases = []
        for i, r in rows.iterrows():
            g = _genz_model(str(r["model"]))
            if g is None:
                continue
            cases.append({"id": int(i), "model": g, "system": _system(r), "bits": GENZ_BITS.get(str(r["precision"]), "bf16"),
                          "batch": int(batch.iloc[i]), "prompt": int(prompt.iloc[i]), "context": int(ctx.iloc[i]),
                          "tp": int(r["tp"]), "pp": int(r["pp"]), "ep": int(r["ep"])})
        gz = _genz(cases, genz_python)
        g_pf = np.array([gz.get(i, {}).get("prefill_ms") or np.nan for i in range(len(rows))], float) / 1e3
        g_dec = np.array([gz.get(i, {}).get("decode_ms") or np.nan for i in range(len(rows))], float) / 1e3
        out[name] = _compare(name, rows, ttft.to_numpy(float), itl.to_numpy(float), pf, dec, g_pf, g_dec)
    return out


def _compare(name, rows, ttft, itl, pf, dec, g_pf, g_dec) -> dict:
    res = {}
    print(f"\n{name}: {len(rows)} configurations")
    for what, meas, ours, genz in (("batch prefill (TTFT)", ttft, pf, g_pf), ("decode step (ITL)", itl, dec, g_dec)):
        ok = np.isfinite(meas) & (meas > 0) & np.isfinite(ours)
        both = ok & np.isfinite(genz)
        line = {"rows": int(ok.sum()), "ours_mape": float(np.mean(np.abs(ours[ok] / meas[ok] - 1))) if ok.any() else None,
                "ours_median_ratio": float(np.median(ours[ok] / meas[ok])) if ok.any() else None,
                "genz_rows": int(both.sum())}
        if both.any():
            line.update({"ours_mape_on_genz_rows": float(np.mean(np.abs(ours[both] / meas[both] - 1))),
                         "genz_mape": float(np.mean(np.abs(genz[both] / meas[both] - 1))),
                         "genz_median_ratio": float(np.median(genz[both] / meas[both]))})
        res[what] = line
        if not line["rows"]:
            continue
        print(f"  {what}: ours MAPE {100 * line['ours_mape']:.1f}% (median predicted/measured "
              f"{line['ours_median_ratio']:.2f}) on {line['rows']} rows" +
              (f"; on the {line['genz_rows']} rows GenZ models: ours {100 * line['ours_mape_on_genz_rows']:.1f}%, GenZ "
               f"{100 * line['genz_mape']:.1f}% (median ratio {line['genz_median_ratio']:.2f})" if both.any() else
               "; GenZ: none of these rows"))
    if "model" in rows:
        per = {}
        for model, idx in rows.groupby("model").groups.items():
            idx = np.asarray(idx)
            m_ok = np.isfinite(itl[idx]) & np.isfinite(dec[idx])
            if m_ok.any():
                per[str(model)] = {"decode_ours_median_ratio": float(np.median(dec[idx][m_ok] / itl[idx][m_ok])),
                                   "decode_genz_median_ratio": float(np.nanmedian(g_dec[idx] / itl[idx]))
                                   if np.isfinite(g_dec[idx]).any() else None}
        res["per_model"] = per
    return res


def v3_steps(v3_result: dict, data: Path, genz_python: str | None) -> dict:
    """v3's median ITL against a decode step at the measured running batch (ours from the fold models, GenZ)."""
    v3 = v3_table(data)
    fitted = fold_models(v3, data)
    ctx = (v3["input_tokens"] + v3["output_tokens"] / 2).to_numpy(float)
    batch = np.maximum(v3["_avg_batch"].to_numpy(float) / np.where((v3["ep"] > 1) & (v3["dp"] > 1), 1, v3["dp"]), 1)
    dec = np.full(len(v3), np.nan)
    for model, idx in v3.groupby("model").groups.items():
        s, c = fitted[model]
        sub = v3.loc[idx].reset_index(drop=True)
        pos = np.asarray([v3.index.get_loc(i) for i in idx])
        _, d = _ours(sub[[c for c in sub.columns if not c.startswith("_")]], s, c, batch[pos],
                     sub["input_tokens"].to_numpy(float), ctx[pos])
        dec[pos] = d
    cases = []
    for i, (_, r) in enumerate(v3.iterrows()):
        g = _genz_model(str(r["model"]))
        if g is None or str(r["modality"]) != "text":
            continue
        cases.append({"id": i, "model": g, "system": _system(r), "bits": GENZ_BITS.get(str(r["precision"]), "bf16"),
                      "batch": int(round(batch[i])), "prompt": int(r["input_tokens"]), "context": int(ctx[i]),
                      "tp": int(r["tp"]), "pp": 1, "ep": int(r["ep"])})
    gz = _genz(cases, genz_python)
    g_dec = np.array([gz.get(i, {}).get("decode_ms") or np.nan for i in range(len(v3))], float) / 1e3
    meas = v3["_itl_median_s"].to_numpy(float)
    name = "ML.ENERGY v3 (vLLM, continuous batching; fold models, never fitted on the row's model)"
    res = _compare(name, v3, np.full(len(v3), np.nan), meas, np.full(len(v3), np.nan), dec, np.full(len(v3), np.nan),
                   g_dec)
    sims = pd.DataFrame(v3_result.get("rows", []))
    if len(sims) and "tpot_median_s" in sims:
        ok = sims["tpot_median_s"].notna() & sims["measured_itl_median_s"].notna()
        r = sims[ok]
        res["simulated TPOT (median over requests) vs median ITL"] = {
            "rows": int(ok.sum()), "mape": float(np.mean(np.abs(r["tpot_median_s"] / r["measured_itl_median_s"] - 1))),
            "median_ratio": float(np.median(r["tpot_median_s"] / r["measured_itl_median_s"]))}
        print(f"  simulated TPOT in the closed loop vs median ITL: MAPE "
              f"{100 * res['simulated TPOT (median over requests) vs median ITL']['mape']:.1f}% on {int(ok.sum())} rows")
    return {name: res}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--v3", action="store_true")
    ap.add_argument("--steps", action="store_true")
    ap.add_argument("--genz-python", default=None, help="interpreter with genz-llm installed (benchmarks/genz_steps.py)")
    ap.add_argument("--out", default=None, help="write every figure as JSON here")
    args = ap.parse_args()
    data = _data(args.data)
    everything = not (args.speed or args.v3 or args.steps)
    result = {}
    if args.speed or everything:
        result["speed"] = speed(data)
    if args.v3 or args.steps or everything:
        result["v3"] = v3_benchmark(data)
    if args.steps or everything:
        result["steps"] = step_benchmark(data, args.genz_python)
        result["steps"].update(v3_steps(result["v3"], data, args.genz_python))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
