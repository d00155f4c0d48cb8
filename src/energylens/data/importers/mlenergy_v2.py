"""ML.ENERGY Leaderboard v2: <kind>/<task>/<GPU>/<org>/<model>/bs{B}+tp{T}+pp{P}.json."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ...errors import DataError
from ...io import read_json
from ._common import WITHOUT_ENERGY, assumed_input, require, with_drops

_NAME = re.compile(r"^bs(\d+)\+tp(\d+)\+pp(\d+)\.json$")


def read(path: Path) -> pd.DataFrame:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*.json") if _NAME.match(p.name))
    if not files:
        raise DataError("no bs{B}+tp{T}+pp{P}.json files (ML.ENERGY v2 layout)", path=path)
    rows, dropped = [], {}
    for f in files:
        d = read_json(f, DataError)
        if isinstance(d, dict) and d.get("Energy/req (J)") is None:  # a configuration listed without a measurement
            dropped[WITHOUT_ENERGY] = dropped.get(WITHOUT_ENERGY, 0) + 1
            continue
        m = _NAME.match(f.name)
        parts = f.relative_to(path).parts if path.is_dir() else f.parts
        kind = next((p for p in parts if p.endswith("text_generation")), "llm_text_generation")
        try:
            idx = parts.index(kind)
            v2_task = parts[idx + 1]
        except (ValueError, IndexError):
            v2_task = "chat"
        multimodal = kind.startswith("mllm")
        task = "mllm-chat" if multimodal else v2_task
        tp, pp = int(require(d, "TP", f)), int(require(d, "PP", f))
        try:
            e_req = float(require(d, "Energy/req (J)", f))
            out = float(require(d, "Avg Output Tokens", f))
            tpot = float(require(d, "Avg TPOT (s)", f))
            tput = float(require(d, "Token tput (tok/s)", f))
        except DataError:  # a missing field: its own message
            raise
        except (TypeError, ValueError) as exc:
            raise DataError(f"non-numeric measurement ({exc})", path=f)
        max_bs = int(d.get("Max BS (reqs)") or (m.group(1) if m else 0))
        model_id = require(d, "Model", f)
        input_tokens, visual_tokens, input_src = assumed_input(task, "image" if multimodal else "text", model_id)
        gpu = str(require(d, "GPU", f))
        rows.append({
            "model": require(d, "Model", f), "gpu": gpu, "num_gpus": tp * pp, "tp": tp, "pp": pp,
            "ep": 1, "dp": 1, "batch_size": max_bs, "input_tokens": input_tokens, "visual_tokens": visual_tokens,
            "output_tokens": out,
            "avg_batch_size": d.get("Avg BS (reqs)"), "task": task,
            "modality": "image" if multimodal else "text",
            "energy_request_j": e_req, "energy_token_j": e_req / out if out > 0 else None,
            "itl_s": tpot, "throughput_tok_s": tput,
            "source": "mlenergy-v2", "source_file": "/".join(parts[-6:]) if path.is_dir() else f.name,
            "source_input_tokens": input_src, "source_energy_per_request_j": e_req,
            "source_avg_tpot_s": tpot, "source_task": v2_task,
        })
    return with_drops(pd.DataFrame(rows), len(files), dropped)
