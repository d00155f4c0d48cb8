"""`energylens discover`: symbolic regression finds corrections and time terms in raw system quantities;
cross-validation chooses the structure; the fitted model is written as a model file."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..data.schema import load_many
from ..features.physics import compute_features
from ..io import write_table
from ..model.fitting import measurements
from ._console import console, print_table, progress_bar
from ._options import seed_option
from .model_cmd import _report_fit

# The comparison table's columns a narrow terminal leaves out, first ones first. The ranking's criterion
# (cv_log_mae) and the tie-break (fitted: within 2% of the best the fewest fitted numbers win) stay, so the
# order of the rows can be read from what is shown.
COMPARISON_DROP_ORDER = ("within_budget", "cv_mape_pct")


def comparison_view(compared):
    """The structures `select_structure` compared, lowest cross-validated mean |log error| (the criterion) first."""
    import pandas as pd

    ranked = pd.DataFrame(compared)
    ranked["corrections"] = ranked["corrections"].map(lambda c: ", ".join(c) or "none")
    ranked["cv_mape_pct"] = 100 * ranked["cv_mape"]
    return ranked.sort_values("cv_log_mae")[["structure", "corrections", "fitted", "within_budget", "cv_log_mae",
                                             "cv_mape_pct"]].round(3)


def discover(
    data: list[Path] = typer.Argument(..., help="Profiling data files (concatenated)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the chosen structure, fitted on the rows, as a model file (JSON)."),
    seed: int = seed_option("Random seed of the search and of the CV folds (reproducible)."),
    time_budget: float = typer.Option(20.0, "--time-budget", min=1, help="Seconds the symbolic regression may take."),
    population: int = typer.Option(300, "--population", min=10, help="Population size."),
    max_length: int = typer.Option(15, "--max-length", min=3, help="Longest formula (nodes)."),
    latex: bool = typer.Option(False, "--latex", help="Print the chosen energy formula in LaTeX."),
    front_file: Optional[Path] = typer.Option(None, "--front", help="Write the Pareto front and every compared structure (CSV)."),
):
    """Discover corrections and time terms in raw system quantities and choose the structure by cross-validation."""
    from ._paths import check_output
    check_output(output, inputs=data, outputs=[front_file])
    check_output(front_file, option="--front", inputs=data)
    import pandas as pd
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

    from ..discovery import discover as run
    from ..model.estimator import EnergyLensRegressor
    from ..model.modelfile import save_model
    from ..model.selection import select_structure

    df = load_many(data)
    with progress_bar(TextColumn("symbolic regression"), BarColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task("search", total=1.0)
        found = run(df, seed=seed, time_budget=time_budget, population_size=population, max_length=max_length,
                    progress=lambda frac: bar.update(task, completed=frac))
    front = found.front.copy()
    print_table(front[["complexity", "r2_residual", "monomials"]].round(3),
                title=f"Pareto front of the residual of the {found.base.name} form: {found.rows} rows, seed {seed}, "
                      f"{found.elapsed_s:.0f} s")
    structure, cv, compared = select_structure(compute_features(df), measurements(df), candidates=found.candidates,
                                               seed=seed)
    ranked = pd.DataFrame(compared)
    view = comparison_view(compared)
    print_table(view, title=f"All {len(view)} structures compared by 5-fold cross-validation, lowest mean "
                            "|log error| (cv_log_mae, the criterion) first; within 2% of it the fewest fitted numbers win",
                drop_order=COMPARISON_DROP_ORDER, how="--front FILE or a wider terminal shows them")
    console.print(f"chosen: {structure.why}", markup=False, highlight=False)
    if front_file is not None:
        ranked["corrections"] = ranked["corrections"].map(lambda c: ", ".join(c) or "none")
        ranked["cv_mape_pct"] = 100 * ranked["cv_mape"]
        write_table(pd.concat([front.assign(kind="front"), ranked.assign(kind="compared")], ignore_index=True), front_file)
        console.print(f"wrote the front and the comparison to {front_file}", markup=False, highlight=False)
    model = EnergyLensRegressor(structure=structure, random_state=seed).fit(df)
    model.cv_ = {**cv, "candidates": compared}
    if latex:
        from ..export.latex import formula_latex

        console.print(formula_latex(model), markup=False, highlight=False)
    if output is not None:
        save_model(model, output, {"data": [str(p) for p in data], "rows": len(df), "seed": seed,
                                   "command": "energylens discover " + " ".join(map(str, data)) + f" -o {output} --seed {seed}"
                                              f" --time-budget {time_budget:g}",
                                   "discovery": {"base": found.base.name, "front": front.to_dict("records")}})
        _report_fit(model, len(df), output)
