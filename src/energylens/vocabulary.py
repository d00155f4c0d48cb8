"""Words the whole package shares (a leaf module: it imports nothing of energylens).

How pipeline stages run (`pp_schedule`): "microbatch" (vLLM, SGLang, TensorRT-LLM, Megatron: micro-batches
keep every stage busy at once) or "sequential" (Hugging Face transformers/accelerate `device_map`: one
stage works while the others wait at static power). A row without pp_schedule takes its engine's
schedule: sequential for the engines listed here, microbatch otherwise.
"""
from __future__ import annotations

PP_SCHEDULES = ("microbatch", "sequential")
SEQUENTIAL_PP_ENGINES = ("transformers", "hf", "huggingface", "accelerate")
