"""Entry point: `energylens` and `python -m energylens`."""
from __future__ import annotations

import importlib
import os
import sys

import typer

from .. import __version__
from ..errors import EnergyLensError
from . import catalog_cmd, data_cmd, discover_cmd, evaluate_cmd, model_cmd, profile_cmd, recommend_cmd, serve_cmd


def _click_modules() -> list:
    """Click's exception modules: recent Typer vendors its own Click (typer._click), older Typer uses click."""
    mods = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            mods.append(importlib.import_module(name))
        except ImportError:
            pass
    return mods


def _classes(*names: str) -> tuple:
    return tuple(dict.fromkeys(getattr(m, n) for m in _click_modules() for n in names if hasattr(m, n)))


_CLICK_ERROR = _classes("ClickException")  # UsageError, BadParameter, NoSuchOption, MissingParameter, FileError
_USAGE_ERROR = _classes("UsageError")
_NO_ARGS_IS_HELP = _classes("NoArgsIsHelpError")
_ABORT = tuple(dict.fromkeys((typer.Abort, *_classes("Abort"))))

app = typer.Typer(
    name="energylens",
    help="Interpretable closed-form energy models for LLM inference: measure, fit, explain, recommend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help as plain text: brackets in it are text (pip install 'energylens[cluster]'), never Rich styles, and it
    # wraps to the terminal (80 columns included) without cutting an option name or a word.
    rich_markup_mode=None,
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
    app.command("catalog")(catalog_cmd.catalog)
    app.add_typer(data_cmd.app, name="data")
    for name in ("fit", "predict", "explain", "show"):
        app.command(name)(getattr(model_cmd, name))
    app.command("recommend")(recommend_cmd.recommend)
    app.command("serve")(serve_cmd.serve)
    app.command("discover")(discover_cmd.discover)
    app.command("evaluate")(evaluate_cmd.evaluate)
    app.command("profile")(profile_cmd.profile)
    app.command("plan")(profile_cmd.plan)


_register()


def _one_line(text: str) -> str:
    """Collapse a message onto one line (the CLI's errors are always one line)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _usage_error(exc: Exception) -> str:
    """One line for a Click/Typer usage error: the message (it names the option) and where to get help."""
    msg = _one_line(exc.format_message()) or type(exc).__name__
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, _USAGE_ERROR) and ctx is not None:
        msg += f" (see '{ctx.command_path} --help')"
    return msg


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user errors (usage errors included) become one line on stderr and exit code 2.

    Typer runs with standalone_mode=False so that Click's usage errors reach us instead of being
    printed as a multi-line box; `--help`, `--version` and typer.Exit(code) come back as exit codes.
    """
    try:
        rv = app(args=argv, prog_name="energylens", standalone_mode=False)
    except _NO_ARGS_IS_HELP as exc:  # `energylens` or `energylens data` alone: the help, as --help prints it
        typer.echo(exc.format_message())
        sys.exit(exc.exit_code)
    except _CLICK_ERROR as exc:  # UsageError, BadParameter, NoSuchOption, MissingParameter, FileError, ...
        typer.echo(f"error: {_usage_error(exc)}", err=True)
        sys.exit(2)
    except _ABORT:  # e.g. end of input at a prompt: Click's own behaviour
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    except EnergyLensError as exc:
        typer.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug, not a user error: one line unless debugging
        if os.environ.get("ENERGYLENS_DEBUG"):
            raise
        typer.echo(f"internal error: {type(exc).__name__}: {_one_line(exc)} (set ENERGYLENS_DEBUG=1 for a traceback)",
                   err=True)
        sys.exit(1)
    # Without standalone mode Click returns the code of a typer.Exit / ctx.exit (0 for --help and --version)
    # or the command's return value (our commands return None).
    if isinstance(rv, int) and not isinstance(rv, bool) and rv != 0:
        if rv == 130:  # Typer turns Ctrl-C inside a command into Exit(130)
            typer.echo("interrupted", err=True)
        sys.exit(rv)
