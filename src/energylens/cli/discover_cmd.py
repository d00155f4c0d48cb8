"""`energylens discover`: symbolic regression over hardware-normalized features (structure discovery)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._console import console, table


def discover(
    data: list[Path] = typer.Argument(..., help="Profiling data files (concatenated)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the search (reproducible)."),
    time_budget: float = typer.Option(60.0, "--time-budget", min=1, help="Seconds the search may take."),
    population: int = typer.Option(500, "--population", min=10, help="Population size."),
    max_length: int = typer.Option(30, "--max-length", min=3, help="Longest expression (nodes)."),
    latex: bool = typer.Option(False, "--latex", help="Print the front's formulas in LaTeX."),
    criterion: str = typer.Option("knee", "--select", help="How to pick one formula: knee, best or simplest."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the Pareto front (CSV)."),
):
    """Search formulas for energy over the roofline energy and print the Pareto front."""
    import sympy as sp
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..data.schema import load_many
    from ..discovery import discover as run, select_formula
    from ..discovery.features import FEATURE_DOCS
    from ..discovery.search import to_sympy
    from ..errors import EnergyLensError
    from ..io import write_table

    if criterion not in ("knee", "best", "simplest"):
        raise EnergyLensError(f"--select must be knee, best or simplest, got '{criterion}'")
    df = load_many(data)
    with Progress(TextColumn("symbolic regression"), BarColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("search", total=1.0)
        front = run(df, seed=seed, time_budget=time_budget, population_size=population, max_length=max_length,
                    progress=lambda frac: bar.update(task, completed=frac))
    show = front[["complexity", "r2_ratio", "mape"]].copy()
    show["formula (energy/token = roofline x ...)"] = [str(to_sympy(e).evalf(3)) for e in front["expression"]]
    console.print(table(show, title=f"Pareto front: {front.attrs['rows']} rows, seed {seed}, "
                                    f"{front.attrs['elapsed_s']:.0f} s"))
    pick = select_formula(front, criterion)
    console.print(f"selected ({criterion}): complexity {pick['complexity']}, MAPE {100 * pick['mape']:.1f}%: "
                  f"{to_sympy(pick['expression']).evalf(3)}")
    if latex:
        for e in front["expression"]:
            console.print(sp.latex(to_sympy(e).evalf(3)), markup=False, highlight=False)
    console.print("features: " + "; ".join(f"{k} = {v}" for k, v in FEATURE_DOCS.items()))
    if output is not None:
        write_table(front, output)
        console.print(f"wrote the front to {output}")
