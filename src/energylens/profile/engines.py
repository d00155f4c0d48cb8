"""Inference engines the profiler drives, with random-initialized weights (no download).

Each engine runs a prefill (the whole batch's prompt pass) and a decode (output_tokens steps after a
filled prompt) as separate calls, so the monitor can put a window around each.

- `transformers`: the model built from its config (`from_config`), eager PyTorch with a KV cache.
  Portable and exact in shape, but eager decode is host-bound on fast GPUs (see
  ../shared/data/gpu-prefill-decode/README.md): use it for small models or as a cross-check.
- `vllm`: vLLM with `load_format="dummy"` (random weights), CUDA graphs, tensor and pipeline
  parallelism. Its prefill window is a 1-token generation; its decode window a full generation of
  output_tokens, from which the prefill window is subtracted.
"""
from __future__ import annotations

import inspect
import json
import random
import tempfile
from pathlib import Path

from ..catalog import model_catalog
from ..errors import EnergyLensError
from ..io import read_json


def hf_config_dict(model: str) -> dict:
    """A Hugging Face config for `model`: a local config.json, or one built from the catalog."""
    p = Path(model)
    if p.suffix == ".json" and p.exists():
        return read_json(p, what="model config")  # refuses a FIFO or a device, which would hang a read
    if p.is_dir() and (p / "config.json").exists():
        return read_json(p / "config.json", what="model config")

    spec = model_catalog().get(model)
    if spec.arch in ("ssm", "hybrid"):
        raise EnergyLensError(f"model '{model}': pass its config.json (--model path/config.json) to profile a {spec.arch} model")
    vocab = 128256 if "llama-3" in spec.name.lower() else 151936 if "qwen" in spec.name.lower() else 32000
    h, L, nh, kv, hd = spec.hidden_size, spec.layers, spec.heads, spec.kv_heads, spec.head_dim
    attn = 2 * h * nh * hd + 2 * h * kv * hd
    embed = 2 * vocab * h
    if spec.experts:
        per_expert = (spec.params_total_b * 1e9 - embed - L * attn) / (L * spec.experts)
        inter = max(int(per_expert / (3 * h)), 64)
        return {"model_type": "mixtral", "architectures": ["MixtralForCausalLM"], "hidden_size": h,
                "intermediate_size": inter, "num_hidden_layers": L, "num_attention_heads": nh,
                "num_key_value_heads": kv, "head_dim": hd, "vocab_size": vocab, "num_local_experts": spec.experts,
                "num_experts_per_tok": spec.active_experts, "max_position_embeddings": 32768}
    inter = max(int((spec.params_total_b * 1e9 - embed - L * attn) / (3 * h * L)), 64)
    return {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": h, "intermediate_size": inter,
            "num_hidden_layers": L, "num_attention_heads": nh, "num_key_value_heads": kv, "head_dim": hd,
            "vocab_size": vocab, "max_position_embeddings": 131072}


class TransformersEngine:
    name = "transformers"
    decode_includes_prefill = False

    def __init__(self, device: str = "auto"):
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as exc:
            raise EnergyLensError(f"the transformers engine needs torch and transformers (pip install 'energylens[profile]'): {exc}")
        import torch

        self.torch = torch
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.model = None
        self.loaded = None

    def sync(self):
        if self.device.startswith("cuda"):
            self.torch.cuda.synchronize()

    def load(self, model: str, tp: int = 1, pp: int = 1):
        if tp != 1 or pp != 1:
            raise EnergyLensError("the transformers engine runs tp = pp = 1; use --engine vllm for parallelism")
        if self.loaded == model:
            return
        from transformers import AutoConfig, AutoModelForCausalLM

        cfg_dict = hf_config_dict(model)
        cfg = AutoConfig.for_model(**cfg_dict)
        dtype = self.torch.bfloat16 if self.device.startswith("cuda") else self.torch.float32
        self.torch.manual_seed(0)
        import transformers

        # transformers 4.56 renamed torch_dtype to dtype (and warns on the old name); 4.44 knows only the old one.
        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
        kw = {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}
        self.model = AutoModelForCausalLM.from_config(cfg, **kw).to(self.device).eval()
        self.vocab = int(cfg_dict.get("vocab_size", 32000))
        self.loaded = model

    def _forward(self, ids, cache):
        params = inspect.signature(self.model.forward).parameters
        kw = {"cache": cache} if "cache" in params and cache is not None else ({"past_key_values": cache} if cache is not None else {})
        out = self.model(input_ids=ids, use_cache=True, **kw)
        new_cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        return out.logits[:, -1:].argmax(-1), new_cache

    def prefill(self, batch: int, input_tokens: int):
        with self.torch.inference_mode():
            ids = self.torch.randint(0, self.vocab, (batch, max(int(input_tokens), 1)), device=self.device)
            return self._forward(ids, None)

    def decode(self, state, output_tokens: int):
        nxt, cache = state
        with self.torch.inference_mode():
            for _ in range(int(output_tokens)):
                nxt, cache = self._forward(nxt, cache)
        return nxt

    def release(self):
        self.model = None
        self.loaded = None
        if self.device.startswith("cuda"):
            self.torch.cuda.empty_cache()


class VllmEngine:
    name = "vllm"
    decode_includes_prefill = True  # its decode window re-runs the prompt; the sweep subtracts the prefill

    def __init__(self, device: str = "auto"):
        try:
            import vllm  # noqa: F401
        except ImportError as exc:
            raise EnergyLensError(f"the vllm engine needs vLLM installed (pip install vllm): {exc}")
        self.llm = None
        self.loaded = None

    def sync(self):
        pass  # vLLM's generate() returns when the GPU work is done

    def load(self, model: str, tp: int = 1, pp: int = 1, max_num_seqs: int = 256):
        key = (model, tp, pp, max_num_seqs)
        if self.loaded == key:
            return

        from vllm import LLM

        self.release()
        path = Path(model)
        if not (path.is_dir() or (path.suffix == ".json" and path.exists())):
            folder = Path(tempfile.mkdtemp(prefix="energylens-cfg-"))
            (folder / "config.json").write_text(json.dumps(hf_config_dict(model)))
            path = folder
        elif path.suffix == ".json":
            path = path.parent
        self.llm = LLM(model=str(path), load_format="dummy", skip_tokenizer_init=True, tensor_parallel_size=tp,
                       pipeline_parallel_size=pp, max_num_seqs=max_num_seqs, enforce_eager=False, seed=0)
        self.vocab = int(hf_config_dict(str(path / "config.json")).get("vocab_size", 32000))
        self.loaded = key

    def _generate(self, batch, input_tokens, max_tokens):
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        rnd = random.Random(0)
        prompts = [TokensPrompt(prompt_token_ids=[rnd.randrange(self.vocab) for _ in range(max(int(input_tokens), 1))])
                   for _ in range(batch)]
        sp = SamplingParams(max_tokens=int(max_tokens), min_tokens=int(max_tokens), temperature=0.0, ignore_eos=True,
                            detokenize=False)
        return self.llm.generate(prompts, sp, use_tqdm=False)

    def prefill(self, batch: int, input_tokens: int):
        self._generate(batch, input_tokens, 1)
        return (batch, input_tokens)

    def decode(self, state, output_tokens: int):
        batch, input_tokens = state
        return self._generate(batch, input_tokens, output_tokens)

    def release(self):
        self.llm = None
        self.loaded = None


ENGINES = {"transformers": TransformersEngine, "vllm": VllmEngine}


def make_engine(name: str, device: str = "auto"):
    if name not in ENGINES:
        raise EnergyLensError(f"--engine must be one of {', '.join(ENGINES)}, got '{name}'")
    return ENGINES[name](device=device)
