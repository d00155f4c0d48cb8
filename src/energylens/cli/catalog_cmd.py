"""`energylens catalog`: list the shipped (and user-extended) hardware and model catalogs."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from ._console import console, table


def catalog(
    kind: str = typer.Argument("all", help="What to list: gpus, models or all."),
    hardware_catalog_file: Optional[Path] = typer.Option(None, "--hardware-catalog", help="Extra hardware TOML."),
    model_catalog_file: Optional[Path] = typer.Option(None, "--model-catalog", help="Extra model TOML."),
    model_config: Optional[Path] = typer.Option(None, "--model-config", help="Show the figures read from a Hugging Face config.json."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
):
    """List the accelerators and models EnergyLens knows, with their figures."""
    from ..catalog import hardware_catalog, model_catalog
    from ..errors import EnergyLensError

    if kind not in ("gpus", "models", "all"):
        raise EnergyLensError(f"catalog: expected gpus, models or all, got '{kind}'")
    if model_config is not None:
        from ..catalog import model_from_hf_config

        spec = model_from_hf_config(model_config)
        row = {k: v for k, v in spec.as_dict().items() if k not in ("aliases",)}
        if json_out:
            import json

            typer.echo(json.dumps(row, indent=2))
        else:
            console.print(table(pd.DataFrame([row]).T.reset_index().rename(columns={"index": "field", 0: "value"}),
                                title=f"Model figures read from {model_config}"))
        return
    out = {}
    if kind in ("gpus", "all"):
        hw = hardware_catalog(hardware_catalog_file)
        out["gpus"] = pd.DataFrame([{k: v for k, v in s.as_dict().items() if k not in ("aliases", "source")}
                                    for s in hw.specs.values()])
    if kind in ("models", "all"):
        mc = model_catalog(model_catalog_file)
        cols = ["name", "arch", "params_total_b", "params_active_b", "layers", "hidden_size", "heads", "kv_heads",
                "experts", "active_experts", "precision"]
        out["models"] = pd.DataFrame([{k: s.as_dict()[k] for k in cols} for s in mc.specs.values()])
    if json_out:
        import json

        typer.echo(json.dumps({k: v.to_dict(orient="records") for k, v in out.items()}, indent=2))
        return
    if "gpus" in out:
        console.print(table(out["gpus"], title="Accelerators (dense BF16 peak, memory bandwidth, TDP, idle, link)"))
    if "models" in out:
        console.print(table(out["models"], title="Models"))
