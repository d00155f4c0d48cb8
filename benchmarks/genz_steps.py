"""GenZ's batch prefill and decode step times for configurations given as JSON (run under GenZ's interpreter).

GenZ (PyPI `genz-llm`, the analytic roofline model behind LLM-Viewer-style tools) pins its own NumPy and
pandas, so `bench_load.py --steps` runs this file with the interpreter of a separate virtual environment:

    python3 -m venv /tmp/genz-venv && /tmp/genz-venv/bin/pip install genz-llm
    /tmp/genz-venv/bin/python benchmarks/genz_steps.py cases.json out.json

Each case: {"id", "model": a GenZ model name or a dict of ModelConfig fields, "system": {"Flops" TFLOP/s,
"Memory_size" GB, "Memory_BW" GB/s, "ICN" GB/s}, "bits", "batch", "prompt", "context", "tp", "pp", "ep"}.
Out: {"id", "prefill_ms": GenZ prefill_moddeling Latency (the batch's prompts), "decode_ms": decode_moddeling
Latency (one step of `batch` requests at `context` tokens), "error"}. GenZ's defaults otherwise (system_eff 1).
"""
import json
import sys
import warnings

warnings.filterwarnings("ignore")


def main(src: str, dst: str) -> None:
    from GenZ import decode_moddeling, prefill_moddeling
    from GenZ.Models.default_models import ModelConfig

    cases = json.load(open(src))
    out = []
    for c in cases:
        model = c["model"] if isinstance(c["model"], str) else ModelConfig(**c["model"])
        system = {**c["system"], "real_values": True}
        common = dict(model=model, system_name=system, bits=c["bits"], tensor_parallel=c["tp"],
                      pipeline_parallel=c["pp"], expert_parallel=c["ep"], model_offload=False)
        row = {"id": c["id"], "prefill_ms": None, "decode_ms": None, "error": ""}
        try:
            row["prefill_ms"] = float(prefill_moddeling(batch_size=c["batch"], input_tokens=c["prompt"], **common)["Latency"])
            row["decode_ms"] = float(decode_moddeling(batch_size=c["batch"], input_tokens=c["context"], output_tokens=0,
                                                      **common)["Latency"])
        except Exception as exc:  # noqa: BLE001 - reported per case (e.g. the model does not fit GenZ's memory check)
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        out.append(row)
    json.dump(out, open(dst, "w"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
