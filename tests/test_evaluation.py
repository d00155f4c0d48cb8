"""Metrics, scenario definitions, the no-leak split, baselines and the report writer."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from energylens.evaluation.metrics import mape, mdape, selection_metrics
from energylens.evaluation.scenarios import define_scenarios, split_scenarios
from energylens.evaluation.synthetic import synthetic_profiles


def test_selection_metrics_by_hand():
    e = [10.0, 12.0, 10.1, 20.0]
    m = selection_metrics(e, [3.0, 1.0, 2.0, 4.0])  # picks the 12 J candidate
    assert m["top1"] == 0 and m["top1_2pct"] == 0 and m["regret"] == pytest.approx(0.2)
    m = selection_metrics(e, [2.0, 3.0, 1.0, 4.0])  # picks 10.1 J: within 2% of the best
    assert m["top1"] == 0 and m["top1_2pct"] == 1 and m["regret"] == pytest.approx(0.01)
    assert selection_metrics(e, e)["pairwise"] == 1 and selection_metrics(e, [-x for x in e])["pairwise"] == 0


def test_mape_and_mdape():
    assert mape([11, 9], [10, 10]) == pytest.approx(0.1)
    assert mdape([10, 20, 13], [10, 10, 10]) == pytest.approx(0.3)
    assert np.isnan(mape([1.0], [np.nan]))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.1, 100), min_size=2, max_size=8), st.lists(st.floats(-5, 5), min_size=8, max_size=8))
def test_regret_is_zero_iff_best_is_chosen(energy, noise):
    e = np.array(energy)
    s = e + np.array(noise[: len(e)])
    m = selection_metrics(e, s)
    assert m["regret"] == pytest.approx(e[np.argmin(s)] / e.min() - 1)  # computed independently
    assert (m["regret"] <= 1e-9) == bool(m["top1"])


@pytest.fixture(scope="module")
def table():
    df = synthetic_profiles(n=400, seed=3)
    df["task"] = np.where(np.arange(len(df)) % 2, "chat", "code")
    return df


@pytest.mark.parametrize("kind", ["deployment", "parallelism", "hardware"])
def test_scenarios_have_distinct_candidates(table, kind):
    sc = define_scenarios(table, kind)
    assert sc
    for s in sc:
        rows = table.iloc[s.rows]
        assert len(rows[["gpu", "num_gpus", "tp", "pp", "ep", "dp", "batch_size"]].drop_duplicates()) >= 2
        assert rows["model"].nunique() == 1 and rows["task"].nunique() == 1
        if kind == "parallelism":
            assert rows["gpu"].nunique() == 1 and rows["batch_size"].nunique() == 1
        if kind == "deployment":
            assert (rows["itl_s"] <= s.slo_s + 1e-12).all()
        assert s.candidates == len(rows[["gpu", "num_gpus", "tp", "pp", "ep", "dp", "batch_size"]].drop_duplicates())


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), share=st.floats(0.1, 0.6))
def test_split_never_trains_on_test_candidates(table, seed, share):
    sc = define_scenarios(table, "deployment")
    test, pool = split_scenarios(sc, len(table), np.random.default_rng(seed), share)
    for s in test:
        assert not pool[s.rows].any()


def test_every_baseline_fits_and_predicts(table):
    from energylens.baselines import RANKERS, REGISTRY, make

    train, test = table.iloc[:120], table.iloc[120:160]
    for name in REGISTRY:
        p = make(name, random_state=0).fit(train).predict(test)
        assert p.shape == (40,) and np.isfinite(p).all(), name
        if name not in RANKERS:
            assert (p > 0).all(), name  # energies; rules give scores of any sign


def test_rules_rank_as_they_say():
    import pandas as pd

    from energylens.baselines import make

    cfg = pd.DataFrame({"num_gpus": [1, 2, 1, 4], "gpu_tdp_w": [700, 700, 1000, 700], "batch_size": [8, 64, 8, 256],
                        "gpu_peak_tflops": [989, 989, 2250, 989]})
    assert np.argmin(make("rule_power_per_slot").fit(cfg).predict(cfg)) == 3  # 4 x 700 / 256
    assert np.argmin(make("rule_largest_batch").fit(cfg).predict(cfg)) == 3
    assert np.argmin(make("rule_fewest_gpus").fit(cfg).predict(cfg)) == 2  # one GPU, the newer one
    a, b = make("random", random_state=1).predict(cfg), make("random", random_state=2).predict(cfg)
    assert not np.allclose(a, b) and np.allclose(a, make("random", random_state=1).predict(cfg))


def test_tuned_black_box_chooses_inside_the_training_rows(table):
    from energylens.baselines import make

    m = make("xgb_tuned", random_state=0).fit(table.iloc[:60])
    assert m.target_ in ("request", "token") and m.params_["max_depth"] in (2, 4)


def test_failed_fits_are_counted_not_hidden(table, monkeypatch):
    from energylens.evaluation import experiments as ex
    from energylens.evaluation.runner import failure_summary

    class Broken:
        def __init__(self, random_state=0):
            pass

        def fit(self, df):
            raise RuntimeError("cannot fit")

    monkeypatch.setitem(__import__("energylens.baselines", fromlist=["REGISTRY"]).REGISTRY, "broken", Broken)
    ex.reset_failure_log()
    out = ex.fit_predict(["broken", "loglinear"], table.iloc[:60], table.iloc[60:70], 0)
    assert np.isnan(out["broken"]).all() and np.isfinite(out["loglinear"]).all()
    f = failure_summary()
    assert f["per_method"]["broken"] == {"attempts": 1, "failed": 1, "share": 1.0}
    assert f["over_limit"] == ["broken"] and "cannot fit" in f["errors"][0]["error"]


def test_selection_experiment_records(table):
    from energylens.evaluation.experiments import selection_experiment

    recs = selection_experiment(table, "synthetic", "deployment", ["energylens", "loglinear", "random", "latency_measured"],
                                50, [0, 1])
    assert len(recs) == 8
    el = [r for r in recs if r["method"] == "energylens"]
    assert all(0 <= r["top1"] <= 1 and r["scenarios"] > 0 and r["n_train"] == 50 for r in el)
    assert all(r["candidates"] >= 2 and len(r["candidates_per_scenario"]) == r["scenarios"] for r in recs)
    assert all(0 < r["random_top1"] <= 0.5 and r["regret_j"] >= 0 for r in recs)
    assert np.mean([r["mape"] for r in el]) < 0.2  # the formula generated this synthetic data
    assert all("mape" not in r for r in recs if r["method"] == "random")  # a rank, not an energy


def test_report_writes_markdown_html_json(tmp_path, table):
    from energylens.evaluation.experiments import latency_vs_energy, selection_experiment
    from energylens.report.build import write_report

    res = {"plan": {"quick": True, "seeds": 1, "n_train": 50, "kinds": ["parallelism"], "datasets": ["synthetic"],
                    "curve_sizes": [50], "curve_seeds": 1, "hardware_seeds": 1},
           "data": {"synthetic": {"rows": len(table), "models": 6, "gpus": ["H100-SXM"]}},
           "selection": selection_experiment(table, "synthetic", "deployment", ["energylens", "rf", "random"], 50, [0]),
           "learning_curve": [], "unseen_batch": [], "unseen_hardware": [], "leave_family_out": [],
           "latency_vs_energy": latency_vs_energy(table, "synthetic"), "parity": [], "elapsed_s": 1.0}
    write_report(res, tmp_path, command="test")
    md = (tmp_path / "report.md").read_text()
    assert "## Headline: choosing a deployment from 50 measurements" in md and "energylens" in md
    assert md.splitlines()[2].startswith("Verdict: ") and "Contents: [Data](#data)" in md
    assert "issue" not in md.lower()  # no project-internal wording
    html = (tmp_path / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "data:image/png;base64," in html  # self-contained figures
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["plan"]["n_train"] == 50
    assert {m["method"] for m in saved["methods"]} >= {"energylens", "random"}
    assert saved["cells"] and all(c["candidates_per_scenario"] for c in saved["cells"])


def test_evaluation_pipeline_on_real_data(tmp_path, data_dir):
    """A minimal plan through every experiment and the report, on ML.ENERGY v2 and the H100 file."""
    from energylens.evaluation.runner import Plan, load_datasets, run_evaluation
    from energylens.report.build import write_report

    plan = Plan(seeds=(0,), kinds=("deployment",), datasets=("mlenergy-v2",), curve_sizes=(50,), curve_seeds=(0,),
                hardware_seeds=(0,), predictors=("energylens", "xgb", "loglinear"))  # the pipeline, not every method
    steps = []
    sets = {k: v for k, v in load_datasets(data_dir).items() if k in ("mlenergy-v2", "gpu-prefill-decode")}
    res = run_evaluation(plan=plan, progress=lambda i, n, label: steps.append((i, n)), sets=sets)
    assert steps and steps[-1][0] == steps[-1][1]
    assert {r["method"] for r in res["selection"]} >= {"energylens", "xgb_tuned", "roofline", "random",
                                                        "rule_largest_batch", "latency_measured"}
    assert res["failures"]["over_limit"] == []
    assert res["prefill_decode_lomo"] and res["planned_vs_random"] and res["residuals"] and res["random_split"]
    assert {r["dataset"] for r in res["new_engine"]} == {"mlenergy-v2", "gpu-prefill-decode"}
    write_report(res, tmp_path, sets, "test")
    md = (tmp_path / "report.md").read_text()
    for title in ("Headline", "Learning curves", "Unseen hardware", "Leave one model family out", "A new serving engine",
                  "Latency-optimal vs energy-optimal", "Planned vs random", "Prefill and decode", "Failed fits"):
        assert title in md, title


def test_evaluation_refuses_a_prior_fitted_on_its_test_data(monkeypatch):
    from dataclasses import replace

    import energylens.model.terms as T
    from energylens.errors import DataError
    from energylens.evaluation.runner import check_prior_independence

    check_prior_independence(["mlenergy-v3", "gpu-prefill-decode"])  # the shipped priors are physics
    leaked = (replace(T.PHYSICS_COEFFICIENTS[0], provenance="fitted on gpu-prefill-decode"),) + T.PHYSICS_COEFFICIENTS[1:]
    monkeypatch.setattr(T, "PHYSICS_COEFFICIENTS", leaked)
    with pytest.raises(DataError, match="tau_mem was fitted on gpu-prefill-decode"):
        check_prior_independence(["gpu-prefill-decode"])


def test_repeated_configurations_stay_on_one_side():
    import pandas as pd

    from energylens.evaluation.experiments import configuration_ids, grouped_order, unseen_rows

    df = pd.DataFrame({"model": ["m"] * 12, "gpu": "H100", "num_gpus": 1, "tp": 1, "pp": 1,
                       "batch_size": [1, 1, 1, 2, 2, 2, 4, 4, 4, 8, 8, 8], "input_tokens": 10.0, "output_tokens": 5.0})
    ids = configuration_ids(df)
    assert len(set(ids)) == 4
    order = grouped_order(ids, np.random.default_rng(0))
    train, test = order[:4], unseen_rows(ids, order[:4])  # 4 rows: one configuration and one of the next
    assert not set(ids[train]) & set(ids[test]) and len(test) == 6


def test_no_row_of_a_test_workload_is_trained_on(table):
    from energylens.evaluation.scenarios import workloads

    sc = define_scenarios(table, "deployment")
    work = workloads(table)
    test, pool = split_scenarios(sc, len(table), np.random.default_rng(3), workload=work)
    held = {s.key[:2] for s in test}
    assert held and not any(work[i] in held for i in np.flatnonzero(pool))
