"""Importers against hand-verified rows of the real public files (skipped without ../shared/data)."""
import json

import pytest

from energylens.data.importers import detect_kind, import_dataset
from energylens.errors import DataError


def _one(df, **where):
    sel = df
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, f"expected one row for {where}, got {len(sel)}"
    return sel.iloc[0]


def test_mlenergy_v3_all_rows_and_a_verified_one(data_dir):
    df = import_dataset("mlenergy-v3", data_dir / "mlenergy-v3")
    assert len(df) == 838 and df.attrs == {"rows_read": 838, "dropped": {}}
    assert set(df["task"]) >= {"image-chat", "video-chat", "lm-arena-chat", "gpqa", "sourcegraph-fim"}
    # Qwen__Qwen3-14B__gpqa.json, first configuration: B200, 1 GPU, max_num_seqs 8.
    r = _one(df[df["source_file"] == "Qwen__Qwen3-14B__gpqa.json"], gpu="B200", num_gpus=1, batch_size=8)
    assert r["energy_request_j"] == pytest.approx(9599.698100812033)
    assert r["energy_token_j"] == pytest.approx(1.3662634337367148)
    assert r["itl_s"] == pytest.approx(0.03362808651581872)
    assert r["source_median_itl_ms"] == pytest.approx(33.62808651581872)
    assert r["input_tokens"] == 250 and r["source_input_tokens"] == "assumed:gpqa"
    video = df[df["task"] == "video-chat"]
    assert (video["modality"] == "video").all() and len(video) > 0


def test_mlenergy_v3_expert_parallel_rows(data_dir):
    df = import_dataset("mlenergy-v3", data_dir / "mlenergy-v3")
    ep = df[df["ep"] > 1]
    assert len(ep) > 100 and (ep["arch"] != "dense").all()
    assert (df["num_gpus"] % df["ep"] == 0).all()


def test_mlenergy_v2_all_rows_and_a_verified_one(data_dir):
    df = import_dataset("mlenergy-v2", data_dir / "mlenergy-v2")
    assert len(df) == 356
    r = _one(df, model="google/gemma-2-27b-it", gpu="A100-SXM4-40GB", batch_size=128, tp=4)
    assert r["energy_request_j"] == pytest.approx(230.644433524673)
    assert r["energy_token_j"] == pytest.approx(230.644433524673 / 392.47133333333335)
    assert r["itl_s"] == pytest.approx(0.11220224938943191)
    assert r["num_gpus"] == 4 and r["pp"] == 1
    assert (df["pp"] == 2).sum() == 17 and (df.loc[df["pp"] == 2, "num_gpus"] == 16).all()
    assert set(df.loc[df["source"] == "mlenergy-v2", "task"]) == {"chat", "code", "mllm-chat"}


def test_llm_inference_bench_converts_milliwatts(data_dir):
    df = import_dataset("llm-inference-bench", data_dir / "llm-inference-bench")
    assert len(df) == 60
    r = df[(df["model"] == "meta-llama/Llama-2-7b-hf") & (df["gpu"] == "A100-SXM4-80GB") & (df["batch_size"] == 1)
           & (df["source_framework"] == "vLLM")].iloc[0]
    # 230742.68 mW x 13.645 s / 1 request
    assert r["energy_request_j"] == pytest.approx(230.7426779661017 * 13.645008350024)
    assert r["avg_power_w"] == pytest.approx(230.7426779661017)


def test_splitwise_uses_a100_power_rows(data_dir):
    df = import_dataset("splitwise", data_dir / "splitwise")
    assert len(df) == 260 and set(df["gpu"]) == {"A100-SXM4-80GB"}
    # every H100 row and 160 A100 rows carry no power: counted, not silently lost
    assert df.attrs == {"rows_read": 1260, "dropped": {"without power (average_power 0 or empty: no energy)": 1000}}
    r = df.iloc[0]
    # normalized 0.73599375 x 400 W x 2 GPUs x 7.168984 s / batch 1
    assert r["energy_request_j"] == pytest.approx(0.73599375 * 400 * 2 * 7.168983697891235)
    assert r["ttft_s"] == pytest.approx(0.1962532191537321)


def test_detect_kind(data_dir):
    for kind in ("mlenergy-v3", "mlenergy-v2", "llm-inference-bench", "splitwise"):
        assert detect_kind(data_dir / kind) == kind


def test_wrong_json_is_one_line_error(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "org__model__chat.json").write_text("{not json")
    with pytest.raises(DataError, match="org__model__chat.json.*not valid JSON"):
        import_dataset("mlenergy-v3", tmp_path)


def test_v3_file_without_configurations(tmp_path):
    (tmp_path / "org__model__chat.json").write_text(json.dumps({"model_id": "x", "task": "chat"}))
    with pytest.raises(DataError, match="missing field 'configurations'"):
        import_dataset("mlenergy-v3", tmp_path)


def test_unknown_kind(tmp_path):
    with pytest.raises(DataError, match="unknown dataset kind"):
        import_dataset("nope", tmp_path)


def test_fixed_resolution_vision_encoders_set_visual_tokens(data_dir):
    df = import_dataset("mlenergy-v3", data_dir / "mlenergy-v3")
    gemma = df[(df["model"] == "google/gemma-3-12b-it") & (df["task"] == "image-chat")]
    qwen = df[(df["model"] == "Qwen/Qwen3-VL-8B-Instruct") & (df["task"] == "image-chat")]
    assert (gemma["visual_tokens"] == 256).all() and (gemma["source_input_tokens"] == "assumed:image-chat+model-image-tokens").all()
    assert (qwen["visual_tokens"] == 1200).all()  # dynamic resolution: the task's assumption
    assert (gemma["input_tokens"] == 1300 - 1200 + 256).all()
    assert (df.loc[df["modality"] == "text", "visual_tokens"] == 0).all()
