"""What a newcomer met first: the wrong kind of file in the wrong place, names the catalog lists, the best row's
training domain, the extras named in messages and docs, and the profiler without httpx."""
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import config_rows

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path):
    configs = tmp_path / "configs.csv"
    config_rows(4).to_csv(configs, index=False)
    model = tmp_path / "model.json"
    from energylens.model.modelfile import save_model, load_model

    save_model(load_model("default"), model)
    return configs, model


def test_predict_with_swapped_arguments_says_so(run_cli, files, tmp_path):
    configs, model = files
    out = tmp_path / "out.csv"
    code, text = run_cli("predict", configs, model, "-o", out)
    assert code == 2 and len(text.strip().splitlines()) == 1, text
    assert "first argument must be a model file" in text and "CSV table" in text and "swapped" in text, text
    assert not out.exists()


def test_explain_with_a_model_file_for_the_table_says_so(run_cli, files):
    _, model = files
    code, text = run_cli("explain", model, model)
    assert code == 2 and len(text.strip().splitlines()) == 1, text
    assert "second argument must be a table of configurations" in text and "model file (JSON)" in text, text


@pytest.mark.parametrize("args", [("predict", "defualt", "{configs}", "-o", "{out}"),
                                  ("fit", "{configs}", "-o", "{out}", "--from", "Default.json"),
                                  ("fit", "{configs}", "-o", "{out}", "--from", "defualt")])
def test_a_misspelt_default_model_suggests_default(run_cli, files, tmp_path, args):
    configs, _ = files
    out = tmp_path / "o.json"
    code, text = run_cli(*[a.format(configs=configs, out=out) for a in args])
    assert code == 2 and "did you mean 'default'" in text and len(text.strip().splitlines()) == 1, text
    assert not out.exists()


def test_predict_says_how_many_rows_extrapolate(run_cli, files, tmp_path):
    import pandas as pd

    configs, _ = files
    out = tmp_path / "out.csv"
    code, text = run_cli("predict", "default", configs, "-o", out)
    n = int((pd.read_csv(out, dtype={"extrapolation": str}, keep_default_na=False)["extrapolation"].str.strip() != "").sum())
    assert code == 0 and f"predicted 4 configurations ({n} outside the model's training domain)" in text, text


def test_when_the_best_row_extrapolates_the_summary_and_json_name_the_best_inside(run_cli):
    args = ["recommend", "--model", "meta-llama/Llama-3.1-70B", "--gpu", "H100", "--gpu", "B200", "--max-gpus", "8"]
    code, text = run_cli(*args, "--json")
    assert code == 0
    data = json.loads(text)
    best = data["recommendations"][0]
    assert data["best_extrapolates"] == bool(best["extrapolation"].strip())
    inside = data["best_in_domain"]
    if not data["best_extrapolates"]:
        assert inside is None
        pytest.skip("the best row of this request is inside the training domain with this model")
    from energylens import recommend

    table = recommend("meta-llama/Llama-3.1-70B", ["H100", "B200"], max_gpus=8).table
    checked = table[table["energy_request_lo_j"].notna() & ~table["replica_of_smaller"]]
    first_inside = checked[checked["extrapolation"].str.strip() == ""].iloc[0]
    assert inside["rank"] == first_inside["rank"] and inside["energy_more_pct"] >= 0
    code, text = run_cli(*args)
    flat = " ".join(text.split())
    assert f"the best inside it: #{inside['rank']}" in flat, text


def test_readme_and_docs_name_models_as_the_catalog_lists_them():
    from energylens.catalog import model_catalog

    aliases = model_catalog().aliases()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        used = set(re.findall(r"--model[ =]([\w.-]+/[\w.-]+)", path.read_text()))
        assert not used & set(aliases), f"{path.name} names aliases: {sorted(used & set(aliases))}"


def test_typo_suggestions_name_listed_models(run_cli):
    from energylens.catalog import model_catalog

    listed = set(model_catalog().names())
    code, text = run_cli("recommend", "--model", "Llama-3.1-70B-Instrct", "--gpu", "H100")
    assert code == 2
    named = re.search(r"closest known: (.*) \(or pass", text).group(1)
    firsts = [part.split(" (alias")[0] for part in re.split(r", (?=[\w-]+/)", named)]
    assert firsts and set(firsts) <= listed, named
    assert "meta-llama/Llama-3.1-70B (alias meta-llama/Llama-3.1-70B-Instruct)" in named


def test_catalog_models_lists_each_alias_with_the_model_it_resolves_to(run_cli):
    code, text = run_cli("catalog", "models")
    assert code == 0 and "Also accepted (aliases" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("meta-llama/Llama-3.1-70B:"))
    assert "meta-llama/Llama-3.1-70B-Instruct" in line


def test_every_extra_named_in_messages_and_docs_is_declared_in_pyproject():
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    texts = [p for p in (ROOT / "src").rglob("*.py")] + [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    named = {}
    for path in texts:
        for extra in re.findall(r"(?:energylens|[\"'`]\.)\[([\w-]+)\]", path.read_text()):
            named.setdefault(extra, path.name)
    assert named and set(named) <= extras, {k: v for k, v in named.items() if k not in extras}


def test_the_endpoint_profiler_without_httpx_says_so_first(run_cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "httpx", None)  # import httpx raises ImportError
    code, text = run_cli("profile", "--endpoint", "http://127.0.0.1:9", "--allow-cpu", "-o", tmp_path / "r.csv")
    assert code == 2 and text.strip().splitlines() == [ln for ln in text.splitlines() if ln], text
    assert len(text.strip().splitlines()) == 1 and "needs httpx" in text and "energylens[endpoint]" in text, text


def test_the_no_gpu_hint_of_the_endpoint_profiler_names_its_extra(monkeypatch):
    from energylens.errors import NoGpuError
    from energylens.profile.devices import open_gpus

    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(NoGpuError, match=r"energylens\[endpoint\]"):
        open_gpus(extra="endpoint")


def test_a_progress_bar_leaves_nothing_on_a_pipe(capsys):
    from energylens.cli._console import progress_bar

    print("a")
    with progress_bar() as bar:
        bar.add_task("x", total=1)
    print("b")
    assert capsys.readouterr().out == "a\nb\n"


def test_the_load_counts_say_why_layouts_were_not_simulated():
    from types import SimpleNamespace

    import pandas as pd

    from energylens.cli._load_view import footer_lines

    per_rate = [{"rate_rps": 0.05, "served": 5, "layouts": 19, "pruned": 14, "not_served": {}}]
    load = SimpleNamespace(curve=pd.DataFrame({"rate_rps": [0.05], "deployment": [""]}), traffics=[object()],
                           notes={"per_rate": per_rate, "objective": "energy"})
    line = next(ln for ln in footer_lines(SimpleNamespace(load=load), []) if "layouts" in ln)
    assert line.startswith("At 0.05 requests/s, 5 of 19 layouts serve the load, 14 were not simulated"), line
    assert "lower bound" in line and "could not rank" in line, line
