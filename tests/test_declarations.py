"""Each command's options come from one declaration (cli/declarations.py, recommendation/request.py), and every
--help reads at 80 columns: nothing cut, brackets printed as written."""
import re

import pytest
import typer
from typer.testing import CliRunner

from energylens.cli import declarations as d
from energylens.cli.main import app

COMMAND = typer.main.get_command(app)
DECLARED = {"fit": d.FitOptions, "predict": d.PredictOptions, "explain": d.ExplainOptions, "show": d.ShowOptions,
            "profile": d.ProfileOptions, "plan": d.PlanOptions}


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_the_command_line_is_generated_from_the_declaration(name):
    params = {p.name: p for p in COMMAND.commands[name].params}
    for field, opt, default in d.options(DECLARED[name]):
        p = params.pop(field)
        assert p.help == opt.help and p.required == opt.required, field
        if not opt.argument:
            assert set(p.opts) == {x for x in (opt.short, opt.cli) if x}, field
            assert opt.required or p.default == default, field
        if opt.kind == "int":  # the declared bounds are the ones the command line enforces
            assert (p.min, p.max) == (opt.low, opt.high), field
    assert not params, f"options not declared: {sorted(params)}"


def _help(*args):
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("args", [[], ["recommend"], ["fit"], ["predict"], ["explain"], ["show"], ["profile"],
                                  ["plan"], ["catalog"], ["data"], ["data", "import"], ["discover"], ["evaluate"],
                                  ["serve"]])
def test_help_reads_at_80_columns(args):
    text = _help(*args)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text


@pytest.mark.parametrize("command", ["profile", "evaluate"])
def test_help_prints_brackets_as_written(command):
    assert "pip install 'energylens[cluster]'" in " ".join(_help(command).split())


def test_a_bound_is_declared_once_and_said_in_the_message(run_cli, tmp_path):
    low, high = d.bounds(d.ProfileOptions, "idle_seconds")
    code, out = run_cli("profile", "--model", "m", "--idle-seconds", str(high * 2), "-o", tmp_path / "r.csv")
    assert code == 2 and f"between {low:g} and {high:g}" in out, out
    assert f"at most {high:g}" in d.opt(d.ProfileOptions, "idle_seconds").help


def test_a_body_that_does_not_match_its_declaration_is_refused():
    with pytest.raises(TypeError, match="declares"):
        d.command(d.ShowOptions)(lambda model_file: None)
    assert re.search("model_file", str(d.signature(d.ShowOptions)))
