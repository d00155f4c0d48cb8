"""The fast paths give the reference path's numbers: streamed prediction files (identical to in-memory
ones), the vectorized candidate space, and recommend (identical to pricing every feasible candidate through
predict_frame)."""
import numpy as np
import pandas as pd
import pytest

from energylens.features.physics import compute_features
from energylens.model.terms import GROUPS
from energylens.model.default import default_model


# ---------------------------------------------------------------- streamed files


def _configs(n):
    from conftest import config_rows

    df = config_rows(n, seed=3)
    df["model"] = np.where(np.arange(n) % 3 == 0, "Qwen/Qwen3-30B-A3B", "meta-llama/Llama-3.1-8B")
    return df


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_streamed_predictions_equal_in_memory(tmp_path, suffix):
    from energylens.data.schema import load_profiles
    from energylens.data.stream import predict_file
    from energylens.io import read_table, write_table

    src, out = tmp_path / f"c{suffix}", tmp_path / f"p{suffix}"
    write_table(_configs(250), src)
    model = default_model()
    assert predict_file(model, src, out, chunk_rows=64) == 250  # four chunks, the last one short
    streamed = read_table(out)
    whole = load_profiles(src, require_energy=False)
    expected = model.predict_frame(whole)
    assert list(streamed.columns) == list(whole.columns) + list(expected.columns)
    for c in expected.columns:
        if not pd.api.types.is_numeric_dtype(expected[c]):  # text (the training-domain flags): an empty cell reads back as missing
            got = streamed[c].astype(object)
            assert got.where(got.notna(), "").astype(str).tolist() == expected[c].astype(str).tolist(), c
        else:
            np.testing.assert_array_equal(streamed[c].to_numpy(float), expected[c].to_numpy(float), err_msg=c)
    pd.testing.assert_series_equal(streamed["model"], whole["model"], check_dtype=False)


def test_a_row_error_in_chunk_three_names_the_file_row(tmp_path):
    from energylens.data.stream import predict_file
    from energylens.errors import DataError

    df = _configs(300)
    df.loc[137, "tp"] = 0  # chunk 3 of 64-row chunks, its 10th row; file row 138
    src, out = tmp_path / "c.csv", tmp_path / "p.csv"
    df.to_csv(src, index=False)
    with pytest.raises(DataError, match=r"c\.csv, row 138, column 'tp': expected a value >= 1, got 0") as exc:
        predict_file(default_model(), src, out, chunk_rows=64)
    assert exc.value.row == 138
    assert not out.exists() and not list(tmp_path.glob(".p.csv*"))  # no partial output left


def test_text_in_a_number_column_after_the_first_block_names_the_row(tmp_path, monkeypatch):
    """pyarrow types columns from its first block; a later cell that does not fit is the schema's to name."""
    from energylens.data import stream
    from energylens.errors import DataError

    monkeypatch.setattr(stream, "CSV_BLOCK_BYTES", 1 << 12)
    df = _configs(400).astype({"batch_size": object})
    df.loc[301, "batch_size"] = "lots"
    src = tmp_path / "c.csv"
    df.to_csv(src, index=False)
    with pytest.raises(DataError, match=r"row 302, column 'batch_size': expected a number, got 'lots'"):
        stream.predict_file(default_model(), src, tmp_path / "p.csv", chunk_rows=64)


def test_explain_reads_only_the_rows_it_shows(tmp_path, run_cli):
    from energylens.data.stream import read_head

    df = _configs(40)
    df.loc[30, "num_gpus"] = -5  # beyond the rows shown: never read
    src = tmp_path / "c.csv"
    df.to_csv(src, index=False)
    assert len(read_head(src, 3)) == 3
    code, out = run_cli("explain", "default", src, "--rows", "3")
    assert code == 0, out
    code, out = run_cli("explain", "default", src, "--rows", "35")
    assert code == 2 and "row 31, column 'num_gpus'" in out


# ---------------------------------------------------------------- recommend


def _reference_ranking(model, gpus, max_gpus, input_tokens, output_tokens, batches, objective, visual_tokens=0.0):
    """recommend's ranked table the slow way: every candidate's reason written, the feasible rows copied
    whole and priced by predict_frame (features computed again), ranked by pandas."""
    from energylens.model.terms import GROUPS
    from energylens.recommendation import objectives
    from energylens.recommendation.search import enumerate_candidates

    est = default_model()
    cand = enumerate_candidates(model, gpus, max_gpus, input_tokens, output_tokens, batches,
                                visual_tokens=visual_tokens)
    ok = cand[cand["reason"] == ""].reset_index(drop=True)
    ok[est.fitted_.engine_column] = max(est.engines_, key=lambda g: est.engines_[g].rows)
    pred = est.predict_frame(ok, breakdown=True)
    res = ok[["model", "gpu", "num_gpus", "tp", "pp", "ep", "dp", "batch_size"]].copy()
    for name, col, scale in (("energy_request_j", "pred_energy_request_j", 1), ("energy_token_j", "pred_energy_token_j", 1),
                             ("prefill_energy_j", "pred_prefill_energy_j", 1), ("decode_energy_j", "pred_decode_energy_j", 1),
                             ("ttft_ms", "pred_serving_ttft_s", 1e3), ("itl_ms", "pred_serving_itl_s", 1e3),
                             ("latency_s", "pred_serving_latency_s", 1), ("batch_prefill_ms", "pred_ttft_s", 1e3),
                             ("decode_step_ms", "pred_itl_s", 1e3), ("gpu_seconds_per_request", "pred_gpu_seconds", 1),
                             ("power_per_gpu_w", "pred_power_per_gpu_w", 1)):
        res[name] = scale * pred[col].to_numpy() if scale != 1 else pred[col].to_numpy()
    for g in GROUPS:
        res[f"{g}_pct"] = pred[f"{g}_pct"].to_numpy()
    res = objectives.add_objectives(res, objectives.assumptions(), output_tokens)
    column = objectives.OBJECTIVES[objective][0]
    return res.sort_values([column, "latency_s"], kind="mergesort", na_position="last").reset_index(drop=True)


@pytest.mark.parametrize("model, gpus, max_gpus, batches, objective, visual", [
    ("meta-llama/Llama-3.1-70B-Instruct", ["H100", "B200", "A100"], 16, None, "energy", 0.0),
    ("Qwen/Qwen3-30B-A3B", ["H100", "H200"], 8, [1, 8, 64, 512, 4096], "cost", 0.0),
    ("Qwen/Qwen3-VL-30B-A3B-Instruct", ["H200", "B200"], 8, [1, 16, 256], "carbon", 512.0),
])
def test_recommend_ranks_as_the_reference_path(monkeypatch, model, gpus, max_gpus, batches, objective, visual):
    """The fast recommend (memory-check features reused, reasons only for an error, arrays not frames)
    gives the reference path's ranked rows exactly, and computes the features once."""
    from energylens.model import predictor
    from energylens.recommendation import search

    want = _reference_ranking(model, gpus, max_gpus, 1024, 256, batches, objective, visual)
    calls = []
    monkeypatch.setattr(search, "compute_features", lambda df: calls.append(len(df)) or compute_features(df))
    monkeypatch.setattr(predictor, "compute_features", lambda df: pytest.fail("features computed twice"))
    got = search.recommend(model, gpus, max_gpus=max_gpus, batches=batches, objective=objective,
                           visual_tokens=visual, itl_slo_ms=None, ttft_slo_ms=None, return_all=True)
    assert len(calls) == 1 and got.attrs["candidates"] == calls[0]
    assert len(got) == len(want) > 10
    shares = [f"{g}_pct" for g in GROUPS]
    pd.testing.assert_frame_equal(got[[c for c in want.columns if c not in shares]], want.drop(columns=shares),
                                  check_exact=True)
    # Where the energy goes is worked out for the rows a table shows (the best 50 and the noted ones), exactly.
    detailed = got[shares[0]].notna().to_numpy()
    assert detailed[:50].all() and detailed[got["latency_optimal"] | got["tp_default"]].all()
    np.testing.assert_allclose(got.loc[detailed, shares].to_numpy(), want.loc[detailed, shares].to_numpy(), rtol=1e-9)
    distinct = ~got["replica_of_smaller"].to_numpy()  # rank: among distinct layouts, copies carry their layout's
    assert (got["rank"].to_numpy()[distinct] == np.arange(1, distinct.sum() + 1)).all()


def test_recommend_states_memory_reasons_when_nothing_fits():
    """The memory reasons recommend no longer writes for feasible runs still explain an infeasible one."""
    from energylens.errors import InfeasibleError
    from energylens.recommendation.search import recommend

    with pytest.raises(InfeasibleError, match=r"11 of 11 candidates fail on memory \(e\.g\. weights 141 GB leave no "
                                              r"KV-cache room in the 48 GB of 1 GPU\)"):
        recommend("meta-llama/Llama-3.1-70B-Instruct", ["L40S"], max_gpus=1)


def test_a_write_error_in_the_writer_thread_is_one_line_and_leaves_no_output(tmp_path, monkeypatch):
    """Chunks are written on a background thread: its error reaches the caller, and nothing is left behind."""
    from energylens.data import stream
    from energylens.data.stream import predict_file
    from energylens.errors import DataError

    monkeypatch.setattr(stream, "CSV_BLOCK_BYTES", 1 << 12)  # the first chunk's task column: all empty, no type
    df = _configs(200)
    df["task"] = np.where(np.arange(200) < 150, None, "chat")  # no text in chunks 1-2, text in chunk 3
    src, out = tmp_path / "c.csv", tmp_path / "p.parquet"
    df.to_csv(src, index=False)
    with pytest.raises(DataError, match=r"p\.parquet: a later chunk's column types do not fit the first chunk's"):
        predict_file(default_model(), src, out, chunk_rows=64)
    assert not out.exists() and not list(tmp_path.glob(".p.parquet*"))
    assert predict_file(default_model(), src, tmp_path / "p.csv", chunk_rows=64) == 200  # CSV is text: it fits
    assert pd.read_csv(tmp_path / "p.csv")["task"].tolist() == [np.nan] * 150 + ["chat"] * 50
