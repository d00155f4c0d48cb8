"""`energylens recommend`: the energy-optimal deployment for a model, a GPU pool and a workload."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._console import console, table


def recommend(
    model: str = typer.Option(..., "--model", help="Catalog model name, or a Hugging Face config.json path."),
    gpu: list[str] = typer.Option(..., "--gpu", help="GPU type available (repeat for a mixed pool; repeats and aliases of one GPU count once)."),
    max_gpus: int = typer.Option(8, "--max-gpus", help="Most GPUs one deployment may use (1 to 100,000)."),
    input_tokens: float = typer.Option(1024, "--input-tokens", help="Mean prompt tokens per request (0 to 10,000,000)."),
    output_tokens: float = typer.Option(256, "--output-tokens", help="Mean generated tokens per request (above 0, at most 10,000,000)."),
    visual_tokens: float = typer.Option(0, "--visual-tokens", help="Image/video tokens among the input tokens (runs the vision encoder)."),
    batch: Optional[list[int]] = typer.Option(None, "--batch", help="Batch sizes (max concurrent requests) to consider; default 1..1024."),
    itl_slo_ms: Optional[float] = typer.Option(None, "--itl-slo-ms", help="Inter-token latency SLO (ms)."),
    ttft_slo_ms: Optional[float] = typer.Option(None, "--ttft-slo-ms", help="Time-to-first-token SLO (ms)."),
    model_file: Optional[Path] = typer.Option(None, "--model-file", help="Fitted model (default: the shipped coefficients)."),
    model_config: Optional[Path] = typer.Option(None, "--model-config", help="Hugging Face config.json for a model not in the catalog."),
    hardware_catalog_file: Optional[Path] = typer.Option(None, "--hardware-catalog", help="Extra hardware TOML."),
    model_catalog_file: Optional[Path] = typer.Option(None, "--model-catalog", help="Extra model TOML."),
    engine: Optional[str] = typer.Option(None, "--engine", help="Which serving engine's coefficients to use (default: the model's main one; 'shared')."),
    top: int = typer.Option(10, "--top", min=1, help="How many configurations to show."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (for scripts) instead of a table."),
    objective: str = typer.Option("energy", "--objective", help="Rank by energy (J/request), cost (USD per million output tokens) or carbon (gCO2e per 1000 requests)."),
    gpu_hour_usd: Optional[str] = typer.Option(None, "--gpu-hour-usd", help="GPU-hour prices, e.g. H100=2.5,B200=5, or a TOML price file (default: catalog/data/gpu_prices.toml)."),
    electricity_usd_per_kwh: Optional[float] = typer.Option(None, "--electricity-usd-per-kwh", help="Electricity price on facility energy (default: US industrial average; 0 where GPU-hours include power)."),
    grid_gco2_per_kwh: Optional[float] = typer.Option(None, "--grid-gco2-per-kwh", help="Grid carbon intensity (gCO2e/kWh); or --region."),
    region: Optional[str] = typer.Option(None, "--region", help="Grid region of catalog/data/grid_intensity.toml (default: world)."),
    pue: Optional[float] = typer.Option(None, "--pue", help="Power usage effectiveness, facility / IT energy (default: 1.58, Uptime Institute 2023)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the energy vs latency Pareto front (PNG)."),
):
    """Enumerate feasible deployments, predict energy and latency, rank by energy per request."""
    from ._paths import check_output
    check_output(plot, option="--plot", inputs=[model_file, model_config, hardware_catalog_file, model_catalog_file, Path(model)])
    import json

    from ..recommendation.search import recommend as run

    res = run(model, gpu, max_gpus=max_gpus, input_tokens=input_tokens, output_tokens=output_tokens,
              batches=batch, itl_slo_ms=itl_slo_ms, ttft_slo_ms=ttft_slo_ms, model_file=model_file,
              model_config=model_config, hardware_catalog_file=hardware_catalog_file,
              model_catalog_file=model_catalog_file, return_all=True, visual_tokens=visual_tokens, engine=engine,
              objective=objective, gpu_hour_usd=gpu_hour_usd, electricity_usd_per_kwh=electricity_usd_per_kwh,
              grid_gco2_per_kwh=grid_gco2_per_kwh, region=region, pue=pue)
    compact = res[~res["replica_of_smaller"] | res["latency_optimal"] | res["tp_default"]]
    ranked = compact[~compact["replica_of_smaller"]].head(top)
    shown = compact[compact.index.isin(ranked.index) | compact["latency_optimal"] | compact["tp_default"]]
    if plot is not None:
        from ..report.plots import pareto_plot

        pareto_plot(res, plot)
    if json_out:
        payload = {
            "model": model, "gpus": res.attrs.get("gpus", gpu), "max_gpus": max_gpus, "input_tokens": input_tokens,
            "output_tokens": output_tokens, "itl_slo_ms": itl_slo_ms, "ttft_slo_ms": ttft_slo_ms,
            "candidates": res.attrs.get("candidates"), "feasible": res.attrs.get("feasible"),
            "meeting_slo": res.attrs.get("meeting_slo"), "engine": res.attrs.get("engine"),
            "objective": res.attrs.get("objective"), "assumptions": res.attrs.get("assumptions"),
            "recommendations": json.loads(shown.to_json(orient="records")),
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    best = res.iloc[0]
    from ..model.terms import GROUP_LABELS, GROUPS

    groups = [g for g in GROUPS if (shown[f"{g}_pct"].fillna(0) != 0).any()]  # terms the model file has
    view = shown[["rank", "gpu", "num_gpus", "tp", "pp", "ep", "dp", "batch_size", "energy_request_j", "energy_token_j",
                  "ttft_ms", "itl_ms", *[f"{g}_pct" for g in groups]]].copy()
    view.columns = ["#", "GPU", "n", "TP", "PP", "EP", "DP", "batch", "J/req", "J/tok", "TTFT ms", "ITL ms",
                    *[f"{GROUP_LABELS[g]}%" for g in groups]]
    view["note"] = ["latency-optimal" if lo else ("all-GPU TP default" if td else "")
                    for lo, td in zip(shown["latency_optimal"], shown["tp_default"])]
    console.print(table(view.round(2), title=f"Deployments of {model} ranked by predicted energy per request "
                                             f"(coefficients: {res.attrs.get('engine')})"))
    if res.attrs.get("structure"):
        console.print(f"model structure: {res.attrs['structure']}", markup=False, highlight=False)
    hidden = int(res["replica_of_smaller"].sum())
    console.print(f"{res.attrs['candidates']} candidates, {res.attrs['feasible']} feasible, {res.attrs['meeting_slo']} meeting the SLOs"
                  + (f"; {hidden} data-parallel copies of listed layouts not shown (same J/request)." if hidden else "."))
    lat = res[res["latency_optimal"]].iloc[0]
    console.print(f"best: {best['gpu']} x{best['num_gpus']} tp{best['tp']} pp{best['pp']} ep{best['ep']} dp{best['dp']} "
                  f"batch {best['batch_size']}: {best['energy_request_j']:.4g} J/request, {best['energy_token_j']:.4g} J/token; "
                  f"saves {100 * (1 - best['energy_request_j'] / lat['energy_request_j']):.1f}% vs the latency-optimal choice at the same batch "
                  f"({lat['gpu']} x{lat['num_gpus']} tp{lat['tp']} pp{lat['pp']} ep{lat['ep']}, {lat['itl_ms']:.1f} ms ITL)")
    td = res[res["tp_default"]]
    if len(td):
        d = td.iloc[0]
        console.print(f"vs the all-GPUs-in-one-TP-group default ({d['gpu']} x{d['num_gpus']} tp{d['tp']} batch {d['batch_size']}): "
                      f"saves {100 * (1 - best['energy_request_j'] / d['energy_request_j']):.1f}%")
