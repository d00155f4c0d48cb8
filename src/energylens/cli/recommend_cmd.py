"""`energylens recommend`: the energy-optimal deployment for a model, a GPU pool and a workload.

The options of the request are recommend's declaration (recommendation/request.py), turned into Typer
options here; only how the answer is printed (--json, --wide, --plot) is this command's own.
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Optional

import typer

from ..io import visible
from ..recommendation.request import CLI, RecommendOptions, typer_parameters
from ..recommendation.search import run
from ._console import console, fitted_table, table, table_width

# The command's own options: how the answer is shown, not what is asked.
OUTPUT_PARAMETERS = [
    inspect.Parameter("json_out", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
        False, "--json", help="Print JSON (for scripts) instead of a table: every shown row with the full term "
                              "breakdown.")),
    inspect.Parameter("wide", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
        False, "--wide", help="Every column: TP, PP, EP, DP apart and each term group's share (the default table "
                              "fits the terminal, dropping the least needed columns first).")),
    inspect.Parameter("plot", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path], default=typer.Option(
        None, "--plot", help="Write the energy vs latency Pareto front (PNG); with several --rate values, the load "
                             "curve: energy per request against the rate.")),
    inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
        False, "--verbose", help="Under the table, every definition, assumption and source (by default a few lines; "
                                 "--json always carries them).")),
]


def recommend(**values):
    """Enumerate feasible deployments, predict energy and latency, rank by energy per request."""
    from ._paths import check_output

    json_out, wide, plot, verbose = values.pop("json_out"), values.pop("wide"), values.pop("plot"), values.pop("verbose")
    opts = RecommendOptions.parse(values, CLI)  # every option checked, before any file is read
    price_file = opts.gpu_hour_usd if isinstance(opts.gpu_hour_usd, Path) else None
    check_output(plot, option="--plot", inputs=[opts.model_file, opts.model_config, opts.hardware_catalog_file,
                                                opts.model_catalog_file, price_file, opts.trace,
                                                *([Path(opts.model)] if opts.model else [])])
    if plot is not None:
        from ..extras import require

        require("--plot", "plot")  # before the search: a missing extra is said at once
    rec = run(opts)
    if rec.load is not None:  # a load was given: the ranking at it, or the load curve
        _print_load(rec, plot, json_out, verbose)
        return
    if plot is not None:
        from ..report.plots import pareto_plot

        pareto_plot(rec.table, plot, title=f"{_model_name(rec)}: energy vs latency of feasible deployments")
    if json_out:
        from . import _recommend_view as view  # the table's layout: loaded when a table is printed

        opts = rec.options
        payload = rec.to_dict()
        payload["footnotes"] = view.footer_lines(rec.table, view.shown_rows(rec), opts.top, opts.output_tokens, [],
                                                 opts.itl_slo_ms, opts.ttft_slo_ms, verbose=True)
        typer.echo(json.dumps(payload, indent=2))
        return
    _print_table(rec, wide, verbose)


def _print_load(rec, plot, json_out: bool, verbose: bool) -> None:
    """`recommend --rate / --trace`: the ranking at the load (one rate) or the load curve (several)."""
    from . import _load_view as view

    load = rec.load
    curve = len(load.traffics) > 1
    if plot is not None:
        from ..report.plots import load_curve_plot, pareto_plot

        if curve:
            load_curve_plot(load, plot, title=f"{_model_name(rec)}: energy per request against the load")
        else:
            pareto_plot(rec.table, plot, title=f"{_model_name(rec)}: energy vs latency at saturation")
    if json_out:
        import json

        typer.echo(json.dumps(rec.to_dict(), indent=2))
        return
    frame, drop = view.curve_frame(load) if curve else view.ranking_frame(load, top=rec.options.top)
    console.print(view.header_line(rec, _model_name(rec)), markup=False, highlight=False)
    t, dropped = fitted_table(frame, drop)
    console.print(t)
    for line in view.footer_lines(rec, dropped):
        console.print(line, markup=False, highlight=False)


def _model_name(rec) -> str:
    return visible(rec.options.model if rec.options.model is not None else rec.table["model"].iloc[0])


def _print_table(rec, wide: bool, verbose: bool = False) -> None:
    from . import _recommend_view as view

    res, opts = rec.table, rec.options
    shown = view.shown_rows(rec)
    frame, drop_order = view.table_frame(shown, res, wide=wide)
    console.print(view.header_line(res, _model_name(rec), opts.input_tokens, opts.output_tokens), markup=False,
                  highlight=False)
    if view.domain_line(res):  # the headline pick extrapolates: the best row that does not, before the table
        console.print(view.domain_line(res), markup=False, highlight=False)
    if wide:  # every column at its natural width, wider than the terminal if need be (never a cell cut)
        printed, dropped = table(frame, compact=True, no_wrap=True), []
        with console.at_least(table_width(printed)):
            console.print(printed)
    else:
        printed, dropped = fitted_table(frame, drop_order)
        console.print(printed)
    for line in view.footer_lines(res, shown, opts.top, opts.output_tokens, dropped, opts.itl_slo_ms,
                                  opts.ttft_slo_ms, verbose=verbose, width=console.width):
        console.print(line, markup=False, highlight=False)


# Typer reads the options from the signature: recommend's declared options, then the output options.
recommend.__signature__ = inspect.Signature(typer_parameters() + OUTPUT_PARAMETERS)
recommend.__annotations__ = {p.name: p.annotation for p in recommend.__signature__.parameters.values()}
