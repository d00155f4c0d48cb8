"""Entry point: `energylens` and `python -m energylens`."""
from __future__ import annotations

import os
import sys

import typer

from .. import __version__
from ..errors import EnergyLensError

app = typer.Typer(
    name="energylens",
    help="Interpretable closed-form energy models for LLM inference: measure, fit, explain, recommend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool):
    if value:
        typer.echo(f"energylens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    """EnergyLens command line."""


def _register():
    from . import catalog_cmd, data_cmd, discover_cmd, evaluate_cmd, model_cmd, profile_cmd, recommend_cmd

    app.command("catalog")(catalog_cmd.catalog)
    app.add_typer(data_cmd.app, name="data")
    for name in ("fit", "predict", "explain", "show"):
        app.command(name)(getattr(model_cmd, name))
    app.command("recommend")(recommend_cmd.recommend)
    app.command("discover")(discover_cmd.discover)
    app.command("evaluate")(evaluate_cmd.evaluate)
    app.command("profile")(profile_cmd.profile)
    app.command("plan")(profile_cmd.plan)


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user errors become one line on stderr and exit code 2."""
    try:
        app(args=argv, prog_name="energylens")
    except EnergyLensError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug, not a user error: one line unless debugging
        if os.environ.get("ENERGYLENS_DEBUG"):
            raise
        typer.echo(f"internal error: {type(exc).__name__}: {exc} (set ENERGYLENS_DEBUG=1 for a traceback)", err=True)
        sys.exit(1)
