"""The whitelisted expression grammar of model files: what it accepts, what it refuses, and that
refusal is one line with exit code 2 from every command that reads a model file."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from energylens.errors import ModelFileError
from energylens.model.expression import FUNCTIONS, ExpressionError, parse
from energylens.model.structure import FEATURES, Structure, physics_structure

KNOWN = ("batch", "tdp", "G")


def test_accepts_the_grammar_and_evaluates_it():
    e = parse("tdp*G/(batch + 1) - 2**3 + exp(log(batch)) + sqrt(4) + min(batch, 2, 3) + max(G, 0) + -1", KNOWN)
    v = e.evaluate({"batch": np.array([1.0, 3.0]), "tdp": np.array([100.0, 100.0]), "G": np.array([2.0, 4.0])})
    np.testing.assert_allclose(v, [100 - 8 + 1 + 2 + 1 + 2 - 1, 100 - 8 + 3 + 2 + 2 + 4 - 1])
    assert e.symbols == {"batch", "tdp", "G"}


@pytest.mark.parametrize("text", [
    "__import__('os').system('echo pwned')",  # calls outside the whitelist
    "().__class__.__bases__[0].__subclasses__()",  # attribute access, subscripts
    "open('/etc/passwd')",
    "lambda: 1",
    "[batch for batch in tdp]",
    "batch if tdp else G",
    "batch == tdp",
    "batch and tdp",
    "'text'",
    "True",
    "1e999",  # overflows to infinity
    "exp(batch, tdp)",  # wrong arity
    "min(batch)",
    "log(x=batch)",
    "unknown_symbol * 2",
    "batch; import os",
    "batch\nimport os",
    "f'{batch}'",
    "batch @ tdp",
    "batch // 2",
    "batch % 2",
    "(" * 5000 + "batch" + ")" * 5000,  # nesting that would exhaust the parser's stack
    "batch+" * 1000 + "batch",  # longer than any readable term
    "",
])
def test_refuses_everything_else(text):
    with pytest.raises(ExpressionError):
        parse(text, KNOWN)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_any_text_parses_or_is_refused_cleanly(text):
    """No text makes the parser raise anything but the one refusal the CLI turns into exit code 2."""
    try:
        e = parse(text, KNOWN)
    except ExpressionError as exc:
        assert "\n" not in str(exc)
        return
    out = e.evaluate({k: np.array([2.0]) for k in KNOWN})
    assert np.shape(out) in ((), (1,))


def _model_file(tmp_path, run_cli):
    from energylens.evaluation.synthetic import synthetic_profiles

    data = tmp_path / "runs.csv"
    synthetic_profiles(n=40, seed=5).to_csv(data, index=False)
    model = tmp_path / "m.json"
    code, out = run_cli("fit", data, "-o", model, "--structure", "compact")
    assert code == 0, out
    return data, model


def _step(d) -> dict:
    """The t_step definition of a model file's structure."""
    return next(t for t in d["structure"]["time"] if t["name"] == "t_step")


def _rewrite(path, edit):
    """Edit a model file and re-sign it (the checksum detects accidents, not tampering)."""
    from energylens.model.modelfile import _checksum

    d = json.loads(path.read_text())
    edit(d)
    d.pop("sha256")
    d["sha256"] = _checksum(d)
    path.write_text(json.dumps(d))


@pytest.mark.parametrize("hostile", ["__import__('os').system('touch PWNED')", "tdp.__class__", "open('x')",
                                     "eval('1')", "(" * 3000 + "tdp" + ")" * 3000, "tdp if 1 else 2"])
def test_hostile_expressions_in_a_model_file_are_refused_by_every_command(tmp_path, run_cli, hostile):
    data, model = _model_file(tmp_path, run_cli)
    _rewrite(model, lambda d: _step(d).__setitem__("expression", hostile))
    for args in (("predict", model, data, "-o", tmp_path / "p.csv"), ("explain", model, data), ("show", model),
                 ("fit", data, "--from", model, "-o", tmp_path / "r.json"),
                 ("fit", data, "--structure", model, "-o", tmp_path / "s.json"),
                 ("recommend", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "H100", "--max-gpus", 1,
                  "--input-tokens", 100, "--output-tokens", 10, "--model-file", model)):
        code, out = run_cli(*args)
        assert code == 2 and len(out.strip().splitlines()) == 1 and "t_step" in out, (args[0], out)
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["structure"].__setitem__("coefficients", "all"), "list"),
    (lambda d: d["structure"]["coefficients"][0].__setitem__("groups", ["static"]), "unknown group"),
    (lambda d: d["structure"]["coefficients"][0].__setitem__("prior", "one"), "wrong type"),
    (lambda d: d["structure"]["coefficients"][0].__setitem__("evil", 1), "unknown field"),
    (lambda d: d["structure"]["coefficients"][0].__setitem__("kind", "energy"), "kind time or power"),
    (lambda d: d["structure"]["time"].remove(_step(d)), "t_step and t_prefill"),
    (lambda d: _step(d).__setitem__("name", "p_decode"), "reserved"),
    (lambda d: d["shared"]["values"].__setitem__("tau_mem", True), "finite value"),
    (lambda d: d["shared"]["values"].__setitem__("tau_mem", -1.0), "> 0"),
    (lambda d: d["shared"].__setitem__("cov_log", "x"), "matrix"),
    (lambda d: d.__setitem__("structure", [1, 2]), "object"),
])
def test_malformed_structures_are_refused(tmp_path, run_cli, edit, match):
    from energylens.model.modelfile import load_model

    _, model = _model_file(tmp_path, run_cli)
    _rewrite(model, edit)
    with pytest.raises(ModelFileError, match=match):
        load_model(model)


def _coef(d, name) -> dict:
    return next(c for c in d["structure"]["coefficients"] if c["name"] == name)


@pytest.mark.parametrize("edit, match", [
    # a value a fit could never give: static power above TDP, a memory time faster than the hardware
    (lambda d: d["shared"]["values"].__setitem__("s_static", 5.0), "s_static = 5 outside its range"),
    (lambda d: d["shared"]["values"].__setitem__("tau_mem", 0.01), "tau_mem = 0.01 outside its range"),
    # a structure may narrow a library coefficient's physical range, never widen it
    (lambda d: _coef(d, "s_static").__setitem__("upper", 5.0), "physical range"),
    (lambda d: _coef(d, "tau_mem").__setitem__("lower", 0.01), "physical range"),
])
def test_coefficients_outside_their_physical_range_are_refused(tmp_path, run_cli, edit, match):
    from energylens.model.modelfile import load_model

    _, model = _model_file(tmp_path, run_cli)
    _rewrite(model, edit)
    with pytest.raises(ModelFileError, match=match):
        load_model(model)


def test_a_structure_file_cannot_define_a_time_below_the_hardware(tmp_path, run_cli):
    """Whatever a structure file writes for t_step, the step is never shorter than the ideal hardware time."""
    import pandas as pd

    from energylens.features.physics import compute_features
    from energylens.model.modelfile import load_model

    data, model = _model_file(tmp_path, run_cli)
    _rewrite(model, lambda d: _step(d).__setitem__("expression", "0.000001*tau_mem"))
    fitted = load_model(model).fitted_
    f = compute_features(pd.read_csv(data))
    out = fitted.structure.evaluate(f, fitted.shared.values)
    floor = f.pp_slots * np.maximum(out["w_mem_dec"], out["w_flop_dec"])
    assert np.all(out["t_step"] >= floor * (1 - 1e-12)) and np.all(floor > 1e-6)


def test_structure_round_trips_through_its_data():
    s = physics_structure()
    back = Structure.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s and back.names == s.names
    known = set(FEATURES) | set(s.names) | {d.name for d in s.definitions()} | set(FUNCTIONS)
    assert {n.id for _, _, tree in s.parsed for n in __import__("ast").walk(tree) if isinstance(n, __import__("ast").Name)} <= known


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.__setitem__("engines", [1]), "engines"),
    (lambda d: d.__setitem__("provenance", ["x"]), "provenance"),
    (lambda d: d.__setitem__("estimator_params", "fast"), "estimator_params"),
    (lambda d: d["estimator_params"].__setitem__("n_starts", "4"), "n_starts"),
    (lambda d: d["estimator_params"].__setitem__("loss", "exotic"), "loss"),
    (lambda d: d["shared"]["values"].__setitem__("tau_mem", "1.5"), "finite value"),
    (lambda d: d["shared"]["values"].__setitem__("tau_mem", 1e308), "<="),
    (lambda d: d["shared"]["values"].__setitem__("tau_mem", float("nan")), "finite value"),
    (lambda d: d["shared"]["cov_log"][0].__setitem__(0, float("nan")), "finite"),
    (lambda d: d["shared"]["fitted"].__setitem__("tau_mem", "yes"), "true or false"),
])
def test_wrong_types_in_a_valid_model_file_are_refused_in_one_line(tmp_path, run_cli, edit, match):
    data, model = _model_file(tmp_path, run_cli)
    _rewrite(model, edit)
    code, out = run_cli("predict", model, data, "-o", tmp_path / "p.csv")
    assert code == 2 and len(out.strip().splitlines()) == 1 and match in out, out


def test_deeply_nested_model_file_is_refused(tmp_path, run_cli):
    p = tmp_path / "deep.json"
    p.write_text("[" * 200_000 + "]" * 200_000)
    code, out = run_cli("show", p)
    assert code == 2 and len(out.strip().splitlines()) == 1, out[:300]


def test_show_prints_file_text_without_markup_or_terminal_escapes(tmp_path, run_cli):
    data, model = _model_file(tmp_path, run_cli)
    _rewrite(model, lambda d: d["provenance"].__setitem__("command", "[bold red]boom[/] \x1b[2J\x1b]0;title\x07"))
    code, out = run_cli("show", model)
    assert code == 0 and "\x1b" not in out and "[bold red]boom[/]" in out and "\\x1b" in out


@pytest.mark.parametrize("text", ["tdp*9**9**9", "batch**batch", "2**1000", "tdp*1e31"])
def test_powers_and_constants_are_bounded(text):
    with pytest.raises(ExpressionError):
        parse(text, KNOWN)


def test_long_flat_sums_are_accepted_and_chains_are_bounded():
    assert parse("+".join(["batch"] * 150), KNOWN).evaluate({"batch": np.array([2.0])})[0] == 300
    with pytest.raises(ExpressionError, match="chained"):
        parse("+".join(["G"] * 400), KNOWN)


def test_grammar_errors_name_the_model_file(tmp_path, run_cli):
    data, model = _model_file(tmp_path, run_cli)
    _rewrite(model, lambda d: _step(d).__setitem__("expression", "tdp*9**9**9"))
    code, out = run_cli("show", model, "--latex")
    assert code == 2 and str(model) in out and "exponent" in out


HOSTILE = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=40), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@pytest.fixture(scope="module")
def valid_model_dict(tmp_path_factory):
    from energylens.evaluation.synthetic import synthetic_profiles
    from energylens.model.estimator import EnergyLensRegressor
    from energylens.model.modelfile import model_to_dict

    df = synthetic_profiles(n=40, seed=5)
    return model_to_dict(EnergyLensRegressor(structure="compact", n_starts=1).fit(df)), df


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    else:
        yield path


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_fuzzed_model_files_load_or_fail_in_one_line(valid_model_dict, data, tmp_path_factory):
    """Any leaf of a valid (re-signed) model file replaced by a hostile value: `predict` works or gives one
    line with exit code 2, never an internal error."""
    import copy

    from energylens.cli.main import main
    from energylens.model.modelfile import _checksum

    d, df = valid_model_dict
    d = copy.deepcopy(d)
    leaves = [p for p in _leaves(d) if p and p[0] != "sha256"]
    path = data.draw(st.sampled_from(leaves))
    node = d
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = data.draw(HOSTILE)
    d.pop("sha256")
    d["sha256"] = _checksum(d)
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "m.json").write_text(json.dumps(d))
    df.head(3).to_csv(tmp / "c.csv", index=False)
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(["predict", str(tmp / "m.json"), str(tmp / "c.csv"), "-o", str(tmp / "p.csv")])
            code = 0
        except SystemExit as exc:
            code = exc.code
    assert code in (0, 2), (path, err.getvalue())
    if code == 2:
        assert len(err.getvalue().strip().splitlines()) == 1


@pytest.mark.parametrize("priors", [{"s_static": 3.0}, {"tau_mem": 0.05}])
def test_a_prior_outside_its_physical_range_is_refused(priors):
    """A prior can be held fixed and is then used as given: it must be physical too."""
    from energylens.errors import DataError
    from energylens.evaluation.synthetic import synthetic_profiles
    from energylens.model.estimator import EnergyLensRegressor

    est = EnergyLensRegressor(structure="physics", priors=priors, fixed=tuple(priors), cv_folds=0)
    with pytest.raises(DataError, match=f"{next(iter(priors))} = .* outside its range"):
        est.fit(synthetic_profiles(n=20, seed=1))
