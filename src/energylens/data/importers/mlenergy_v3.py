"""ML.ENERGY Benchmark v3 (compiled leaderboard JSON): models/<org>__<model>__<task>.json."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...errors import DataError
from ...io import read_json
from ._common import ARCH, PRECISION, WITHOUT_ENERGY, assumed_input, require, with_drops

TASK_MODALITY = {"image-chat": "image", "video-chat": "video"}


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    folder = path / "models" if (path / "models").is_dir() else path
    files = sorted(folder.glob("*.json"))
    return [f for f in files if "__" in f.name]


def read(path: Path) -> pd.DataFrame:
    rows, n_read, dropped = [], 0, {}
    files = _files(path)
    if not files:
        raise DataError("no models/<org>__<model>__<task>.json files (ML.ENERGY v3 layout)", path=path)
    for f in files:
        d = read_json(f, DataError)
        model = require(d, "model_id", f)
        task = require(d, "task", f)
        modality = TASK_MODALITY.get(task, "text")
        arch = ARCH.get(str(d.get("architecture", "")).lower())
        precision = PRECISION.get(str(d.get("weight_precision", "")).lower())
        configs = require(d, "configurations", f)
        if not isinstance(configs, list):
            raise DataError("'configurations' must be a list", path=f)
        for k, c in enumerate(configs):
            where = f"{f.name} configuration {k}"
            n_read += 1
            if isinstance(c, dict) and c.get("energy_per_request_joules") is None \
                    and c.get("energy_per_token_joules") is None:  # a configuration listed without a measurement
                dropped[WITHOUT_ENERGY] = dropped.get(WITHOUT_ENERGY, 0) + 1
                continue
            try:
                par = c["parallelization"]
                n = int(c["num_gpus"])
                out_len = float(c["avg_output_len"])
                e_req = float(c["energy_per_request_joules"])
                e_tok = float(c["energy_per_token_joules"])
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{where}: missing or non-numeric field {exc}", path=f)
            input_tokens, visual_tokens, input_src = assumed_input(task, modality, model)
            rows.append({
                "model": model, "gpu": c["gpu_model"], "num_gpus": n,
                "tp": int(par.get("tensor_parallel", 1)), "pp": 1,
                "ep": int(par.get("expert_parallel", 1)), "dp": int(par.get("data_parallel", 1)),
                "batch_size": int(c["max_num_seqs"]), "input_tokens": input_tokens, "visual_tokens": visual_tokens,
                "output_tokens": out_len, "avg_batch_size": c.get("avg_batch_size"),
                "task": task, "precision": precision, "modality": modality, "arch": arch,
                "params_total_b": d.get("total_params_billions"),
                "params_active_b": d.get("activated_params_billions"),
                "energy_request_j": e_req, "energy_token_j": e_tok,
                "itl_s": float(c["median_itl_ms"]) / 1000.0 if c.get("median_itl_ms") else None,
                "avg_power_w": c.get("avg_power_watts"),
                "throughput_tok_s": c.get("output_throughput_tokens_per_sec"),
                "source": "mlenergy-v3",
                "source_file": f.name,
                "source_input_tokens": input_src,
                "source_median_itl_ms": c.get("median_itl_ms"),
                "source_p90_itl_ms": c.get("p90_itl_ms"),
                "source_p99_itl_ms": c.get("p99_itl_ms"),
                "source_energy_per_request_joules": e_req,
                "source_energy_per_token_joules": e_tok,
                "source_parallel_notes": par.get("notes", ""),
            })
    return with_drops(pd.DataFrame(rows), n_read, dropped)
