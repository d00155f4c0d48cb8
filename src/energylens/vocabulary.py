"""Words the whole package shares (a leaf module: it imports nothing of energylens). Each list lives here once;
the schema, the catalogs, the features and the importers read it from here.

How pipeline stages run (`pp_schedule`): "microbatch" (vLLM, SGLang, TensorRT-LLM, Megatron: micro-batches
keep every stage busy at once) or "sequential" (Hugging Face transformers/accelerate `device_map`: one
stage works while the others wait at static power). A row without pp_schedule takes its engine's
schedule: sequential for the engines listed here, microbatch otherwise.
"""
from __future__ import annotations

# Weight precisions and the bytes one parameter takes in each (mxfp4: 4-bit values plus a shared 8-bit scale
# per block of 32, about 4.25 bits).
BYTES_PER_PARAM = {"bf16": 2.0, "fp16": 2.0, "fp32": 4.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5, "mxfp4": 0.53}
PRECISIONS = tuple(BYTES_PER_PARAM)
MODALITIES = ("text", "image", "video")  # what a request's input holds besides text
ARCHS = ("dense", "moe", "ssm", "hybrid")  # model architectures of the catalog and the schema's `arch`
PP_SCHEDULES = ("microbatch", "sequential")
SEQUENTIAL_PP_ENGINES = ("transformers", "hf", "huggingface", "accelerate")
MAX_SEED = 2**32 - 1  # random seeds: NumPy's and scikit-learn's are unsigned 32-bit integers
