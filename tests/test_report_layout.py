"""Figures of the evaluation report and of `recommend --plot`: no label clipped, no two labels overlapping."""
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install '.[plot]')")

from energylens.report import plots, plots_eval  # noqa: E402
from energylens.report.layout import layout_problems  # noqa: E402


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions build, checked before they are saved and closed."""
    found = []
    finish = plots._finish

    def keep(fig, path):
        found.append((fig.axes[0].get_title() or "figure", layout_problems(fig)))
        return finish(fig, path)

    monkeypatch.setattr(plots, "_finish", keep)
    monkeypatch.setattr(plots_eval, "_finish", keep)
    return found


def _inputs():
    rng = np.random.default_rng(0)
    sets = ["mlenergy-v3", "mlenergy-v2", "splitwise"]
    measured = np.exp(rng.uniform(0, 9, 90))
    parity = [{"dataset": sets[i % 3], "measured": m, "energylens": m * rng.uniform(0.8, 1.2), "xgb": m * rng.uniform(0.6, 1.5)}
              for i, m in enumerate(measured)]
    methods = ["energylens", "xgb", "rf", "latency", "roofline", "ensemble", "random"]
    curve = pd.DataFrame([{"dataset": d, "method": m, "n_train": n, "mape": rng.uniform(0.05, 0.6), "top1": rng.uniform(0.2, 0.9)}
                          for d in sets for m in methods for n in (10, 20, 50, 100, 200)])
    selection = [{"kind": "deployment", "method": m, "regrets": list(rng.exponential(0.1, 40))} for m in methods]
    df = pd.DataFrame({"model": rng.choice(["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-30B-A3B-Instruct-2507"], 120),
                       "task": rng.choice(["chat", "code"], 120), "gpu": rng.choice(["H100", "B200"], 120),
                       "itl_s": rng.uniform(0.005, 0.2, 120), "energy_token_j": rng.uniform(0.05, 3, 120)})
    res = pd.DataFrame({"gpu": rng.choice(["H100-SXM", "B200"], 200), "latency_s": np.exp(rng.uniform(0, 4, 200)),
                        "energy_request_j": np.exp(rng.uniform(3, 7, 200))})
    return parity, curve, selection, df, res


def test_report_figures_are_readable(drawn):
    parity, curve, selection, df, res = _inputs()
    plots_eval.parity_plot(parity)
    plots_eval.learning_plot(curve)
    plots_eval.regret_plot(selection)
    plots_eval.measured_pareto_plot(df)
    plots.pareto_plot(res)
    assert len(drawn) == 5
    for title, problems in drawn:
        assert problems == [], (title, problems)


def test_the_check_finds_clipping_and_overlap():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_title("a title far too long to fit inside a figure this narrow, cut at both edges")
    ax.set_xticks(range(20))
    ax.set_xticklabels([f"label {i}" for i in range(20)])
    problems = layout_problems(fig)
    plt.close(fig)
    assert any("title" in p and "clipped" in p for p in problems)
    assert any("x tick" in p and "overlaps" in p for p in problems)


@pytest.mark.parametrize("model", ["Qwen/Qwen3-VL-235B-A22B-Instruct-FP8", "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8"])
def test_recommend_plot_title_with_a_long_model_id_stays_inside(model):
    """`recommend --plot`'s title names the model; a long ID wraps (after the colon first) or shrinks."""
    *_, res = _inputs()
    n = len(res)
    res = res.assign(rank=np.arange(1, n + 1), latency_optimal=np.arange(n) == 5, tp_default=np.arange(n) == 9)
    title = f"{model}: energy vs latency of feasible deployments"
    fig = plots.pareto_figure(res, title=title)
    shown = fig.axes[0].get_title()
    problems = layout_problems(fig)
    import matplotlib.pyplot as plt

    plt.close(fig)
    assert problems == [], problems
    assert " ".join(shown.split()) == title  # wrapped between words only, nothing cut
    assert model in shown.splitlines()[0]
