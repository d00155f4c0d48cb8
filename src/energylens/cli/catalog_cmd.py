"""`energylens catalog`: list the shipped (and user-extended) hardware and model catalogs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.table import Table

from ..catalog import hardware_catalog, model_catalog, model_from_hf_config
from ..errors import EnergyLensError
from ._console import console, fitted_table, plain, print_table

if TYPE_CHECKING:
    import pandas as pd


def catalog(
    kind: str = typer.Argument("all", help="What to list: gpus, models or all."),
    hardware_catalog_file: Optional[Path] = typer.Option(None, "--hardware-catalog", help="Extra hardware TOML."),
    model_catalog_file: Optional[Path] = typer.Option(None, "--model-catalog", help="Extra model TOML."),
    model_config: Optional[Path] = typer.Option(None, "--model-config", help="Show the figures read from a Hugging Face config.json."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
):
    """List the accelerators and models EnergyLens knows, with their figures."""
    import pandas as pd  # here, not at import: `energylens --version` and every other command start without it

    if kind not in ("gpus", "models", "all"):
        raise EnergyLensError(f"catalog: expected gpus, models or all, got '{kind}'")
    if model_config is not None:
        spec = model_from_hf_config(model_config)
        row = {k: v for k, v in spec.as_dict().items() if k not in ("aliases",)}
        row["warnings"] = list(spec.warnings)
        if json_out:
            typer.echo(json.dumps(row, indent=2))
        else:
            row["warnings"] = "; ".join(spec.warnings) or "none"
            print_table(pd.DataFrame([row]).T.reset_index().rename(columns={"index": "field", 0: "value"}),
                        title=f"Model figures read from {model_config}")
        return
    out = {}
    if kind in ("gpus", "all"):
        hw = hardware_catalog(hardware_catalog_file)
        out["gpus"] = pd.DataFrame([{k: v for k, v in s.as_dict().items() if k != "aliases"} for s in hw.specs.values()])
    if kind in ("models", "all"):
        mc = model_catalog(model_catalog_file)
        out["models"] = pd.DataFrame([{k: s.as_dict()[k] for k in MODEL_FIELDS} for s in mc.specs.values()])
    if json_out:
        typer.echo(json.dumps({k: v.to_dict(orient="records") for k, v in out.items()}, indent=2))
        return
    if "gpus" in out:
        _print_gpus(out["gpus"])
    if "models" in out:
        _print_models(out["models"], mc.aliases())


MODEL_FIELDS = ["name", "arch", "params_total_b", "params_active_b", "layers", "hidden_size", "heads", "kv_heads",
                "experts", "active_experts", "precision", "modality", "source"]
# Table headers of the catalogs' figures (units in them); two lines where the words are longer than the numbers.
GPU_HEADERS = {"name": "GPU", "vendor": "vendor", "peak_tflops": "BF16\nTFLOPS", "mem_bw_tbs": "HBM\nTB/s",
               "mem_gb": "mem\nGB", "tdp_w": "TDP\nW", "idle_w": "idle\nW", "link_gbs": "link\nGB/s"}
MODEL_HEADERS = {"name": "model", "arch": "arch", "params_total_b": "params\nB", "params_active_b": "active\nB",
                 "layers": "layers", "hidden_size": "hidden", "heads": "heads", "kv_heads": "KV\nheads",
                 "experts": "experts", "precision": "prec.", "modality": "input", "source": "source"}
MODEL_DROP_ORDER = ["hidden", "heads", "KV\nheads", "input", "layers", "prec.", "active\nB", "experts"]  # first dropped first
HF_CONFIG = "https://huggingface.co/{name}/blob/main/config.json"
HF_SHORT = "HF config"


def _source(name: str, source: str) -> str:
    """A model's source for the table: 'HF config' for its own Hugging Face config.json (the legend under the
    table gives the address), anything else as it is (another repository's URL, 'config <path>')."""
    return HF_SHORT if source == HF_CONFIG.format(name=name) else source


def _print_gpus(gpus: pd.DataFrame) -> None:
    console.print("Accelerators: dense BF16 peak, memory bandwidth and size, TDP, idle power, GPU-to-GPU link",
                  markup=False, highlight=False)
    printed, _ = fitted_table(gpus[list(GPU_HEADERS)].rename(columns=GPU_HEADERS))
    console.print(printed)
    sources = Table.grid(padding=(0, 1))  # a hanging indent: each source wraps beside its GPU's name
    sources.add_column(no_wrap=True)
    sources.add_column(overflow="fold")
    for name, source in zip(gpus["name"], gpus["source"]):
        sources.add_row(plain(f"{name}:"), plain(source or "not given"))
    console.print("Sources:", markup=False, highlight=False)
    console.print(sources)


def _print_models(models: pd.DataFrame, aliases: dict[str, str]) -> None:
    view = models.copy()
    # experts as 'active/total' (8/64); dense models blank
    view["experts"] = [f"{int(a)}/{int(e)}" if e else "" for a, e in zip(view["active_experts"], view["experts"])]
    view["source"] = [_source(n, s) for n, s in zip(view["name"], view["source"])]
    view = view[list(MODEL_HEADERS)].rename(columns=MODEL_HEADERS)
    console.print("Models: parameters (total, active per token), shape, experts active/total, weight precision",
                  markup=False, highlight=False)
    printed, dropped = fitted_table(view, MODEL_DROP_ORDER, whole=("model",))
    console.print(printed)
    if (view["source"] == HF_SHORT).any():
        console.print(f"{HF_SHORT}: {HF_CONFIG.format(name='<model>')}", markup=False, highlight=False)
    if dropped:
        console.print(f"Not shown at this width: {', '.join(d.replace(chr(10), ' ') for d in dropped)} "
                      "(--json or a wider terminal show them).", markup=False, highlight=False)
    if aliases:  # names --model also accepts: each resolves to a listed model and uses its figures
        by_model: dict[str, list[str]] = {}
        for alias, name in aliases.items():
            by_model.setdefault(name, []).append(alias)
        console.print("Also accepted (aliases; each uses the figures of the model it names):", markup=False,
                      highlight=False)
        listed = Table.grid(padding=(0, 1))
        listed.add_column(no_wrap=True)
        listed.add_column(overflow="fold")
        for name, names in by_model.items():
            listed.add_row(plain(f"{name}:"), plain(", ".join(names)))
        console.print(listed)
