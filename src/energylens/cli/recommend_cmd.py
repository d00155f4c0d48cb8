"""`energylens recommend`: the energy-optimal deployment for a model, a GPU pool and a workload."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._console import console, fitted_table, table, table_width


def recommend(
    model: Optional[str] = typer.Option(None, "--model", help="Catalog model name, or a Hugging Face config.json path (with --model-config: the name to show; default: the config's own)."),
    gpu: list[str] = typer.Option(..., "--gpu", help="GPU type available (repeat for a mixed pool; repeats and aliases of one GPU count once)."),
    max_gpus: int = typer.Option(8, "--max-gpus", help="Most GPUs one deployment may use (1 to 100,000)."),
    input_tokens: float = typer.Option(1024, "--input-tokens", help="Mean prompt tokens per request (0 to 10,000,000)."),
    output_tokens: float = typer.Option(256, "--output-tokens", help="Mean generated tokens per request (1 to 10,000,000)."),
    visual_tokens: float = typer.Option(0, "--visual-tokens", help="Image/video tokens among the input tokens (runs the vision encoder)."),
    batch: Optional[list[str]] = typer.Option(None, "--batch", metavar="N[,N...]", help="Batch sizes (max concurrent requests) to consider, comma-separated or repeated (--batch 64,256 = --batch 64 --batch 256); default 1..1024."),
    itl_slo_ms: str = typer.Option("200", "--itl-slo-ms", help="SLO on the mean inter-token latency (TPOT, ms) of a request served under continuous batching; 'none' lifts it. Default: MLPerf's server scenario."),
    ttft_slo_ms: str = typer.Option("2000", "--ttft-slo-ms", help="SLO on the time to first token (ms) of a request served under continuous batching; 'none' lifts it. Default: MLPerf's server scenario."),
    model_file: Optional[Path] = typer.Option(None, "--model-file", help="Model file written by `energylens fit`, or 'default': the shipped coefficients (used when omitted)."),
    model_config: Optional[Path] = typer.Option(None, "--model-config", help="Hugging Face config.json for a model not in the catalog."),
    hardware_catalog_file: Optional[Path] = typer.Option(None, "--hardware-catalog", help="Extra hardware TOML."),
    model_catalog_file: Optional[Path] = typer.Option(None, "--model-catalog", help="Extra model TOML."),
    engine: Optional[str] = typer.Option(None, "--engine", metavar="GROUP", help="Coefficients that price the candidates: one of the model file's engine groups (the values of its training rows' `fit --engine-column`, e.g. mlenergy-v3) or 'shared'; default: the group with most training rows. Not a backend to run (that is `profile --engine`)."),
    top: int = typer.Option(10, "--top", min=1, help="How many configurations to show."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (for scripts) instead of a table: every shown row with the full term breakdown."),
    wide: bool = typer.Option(False, "--wide", help="Every column: TP, PP, EP, DP apart and each term group's share (the default table fits the terminal, dropping the least needed columns first)."),
    objective: str = typer.Option("energy", "--objective", help="Rank by energy (J/request), cost (USD per million output tokens) or carbon (gCO2e per 1000 requests)."),
    pricing: str = typer.Option("cloud", "--pricing", help="cloud: on-demand rental prices per GPU-hour, which include power (no electricity added); owned: electricity x PUE plus an amortized hardware price per GPU-hour (--hardware-usd-per-gpu-hour)."),
    gpu_hour_usd: Optional[str] = typer.Option(None, "--gpu-hour-usd", help="Cloud rental USD per GPU-hour: H100=2.5,B200=5, or a TOML file of lines H100 = 2.5 (tables gpu.H100 with usd_per_hour, optional source and date, work too); they replace the shipped prices (catalog/data/gpu_prices.toml)."),
    hardware_usd_per_gpu_hour: Optional[str] = typer.Option(None, "--hardware-usd-per-gpu-hour", help="With --pricing owned: the hardware's purchase price spread over its hours of service, USD per GPU-hour: one figure for every GPU (1.2) or H100=1.2,B200=2.5 (default: not counted)."),
    electricity_usd_per_kwh: Optional[float] = typer.Option(None, "--electricity-usd-per-kwh", help="USD/kWh on facility energy (GPU energy x PUE), charged on top of the GPU-hour prices (default: none for --pricing cloud, US industrial average for owned)."),
    grid_gco2_per_kwh: Optional[float] = typer.Option(None, "--grid-gco2-per-kwh", help="Grid carbon intensity (gCO2e/kWh); or --region."),
    region: Optional[str] = typer.Option(None, "--region", help="Grid of a country, by name or ISO code (us, de, fr, in, cn, ...; catalog/data/grid_intensity.toml; default: world average)."),
    pue: Optional[float] = typer.Option(None, "--pue", help="Power usage effectiveness, facility / IT energy (default: 1.58, Uptime Institute 2023)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the energy vs latency Pareto front (PNG)."),
    verbose: bool = typer.Option(False, "--verbose", help="Under the table, every definition, assumption and source (by default a few lines; --json always carries them)."),
):
    """Enumerate feasible deployments, predict energy and latency, rank by energy per request."""
    from ._paths import check_output
    if model is None and model_config is None:
        from ..errors import EnergyLensError
        raise EnergyLensError("--model: give a catalog model name (energylens catalog models) or --model-config config.json")
    check_output(plot, option="--plot", inputs=[model_file, model_config, hardware_catalog_file, model_catalog_file,
                                                *([Path(model)] if model else [])])
    import json

    from ..recommendation.search import MAX_BATCH, RECOMMEND_COLUMN_NOTES, recommend as run
    from ._options import int_list

    batches = int_list(batch, "--batch", 1, MAX_BATCH) if batch else None
    res = run(model, gpu, max_gpus=max_gpus, input_tokens=input_tokens, output_tokens=output_tokens,
              batches=batches, itl_slo_ms=itl_slo_ms, ttft_slo_ms=ttft_slo_ms, model_file=model_file,
              model_config=model_config, hardware_catalog_file=hardware_catalog_file,
              model_catalog_file=model_catalog_file, return_all=True, visual_tokens=visual_tokens, engine=engine,
              objective=objective, gpu_hour_usd=gpu_hour_usd, electricity_usd_per_kwh=electricity_usd_per_kwh,
              grid_gco2_per_kwh=grid_gco2_per_kwh, region=region, pue=pue, pricing=pricing,
              hardware_usd_per_gpu_hour=hardware_usd_per_gpu_hour)
    from . import _recommend_view as view
    model = str(res["model"].iloc[0]) if model is None else model

    shown = view.shown_rows(res, top)  # the top distinct layouts, then the latency-optimal and TP-default rows
    if plot is not None:
        from ..report.plots import pareto_plot

        pareto_plot(res, plot, title=f"{model}: energy vs latency of feasible deployments")
    if json_out:
        payload = {
            "model": model, "gpus": res.attrs.get("gpus", gpu), "max_gpus": max_gpus, "input_tokens": input_tokens,
            "output_tokens": output_tokens, "itl_slo_ms": res.attrs["slo"]["itl_ms"], "ttft_slo_ms": res.attrs["slo"]["ttft_ms"],
            "slo_source": res.attrs["slo"]["source"], "latency_definition": res.attrs["latency_definition"],
            "candidates": res.attrs.get("candidates"), "feasible": res.attrs.get("feasible"),
            "meeting_slo": res.attrs.get("meeting_slo"), "engine": res.attrs.get("engine"),
            "objective": res.attrs.get("objective"), "assumptions": res.attrs.get("assumptions"),
            "columns": RECOMMEND_COLUMN_NOTES,
            "footnotes": view.footer_lines(res, shown, top, output_tokens, [], itl_slo_ms, ttft_slo_ms, verbose=True),
            "recommendations": json.loads(shown.to_json(orient="records")),
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    frame, drop_order = view.table_frame(shown, res, wide=wide)
    console.print(view.header_line(res, model, input_tokens, output_tokens), markup=False, highlight=False)
    if wide:  # every column at its natural width, wider than the terminal if need be (never a cell cut)
        printed, dropped = table(frame, compact=True, no_wrap=True), []
        with console.at_least(table_width(printed)):
            console.print(printed)
    else:
        printed, dropped = fitted_table(frame, drop_order)
        console.print(printed)
    for line in view.footer_lines(res, shown, top, output_tokens, dropped, itl_slo_ms, ttft_slo_ms, verbose=verbose,
                                  width=console.width):
        console.print(line, markup=False, highlight=False)
