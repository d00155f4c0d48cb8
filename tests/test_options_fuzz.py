"""Fuzz `energylens recommend`'s options: any value gives a result (exit 0) or one line of error (exit 2),
never an internal error (exit 1) or a traceback."""
import json
import string

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

VALID = st.floats(min_value=1, max_value=4096)  # one in two: a plausible workload, so rankings are exercised too
FLOATS = st.one_of(
    VALID, VALID, VALID,
    st.floats(allow_nan=True, allow_infinity=True),  # anything, nan, +-inf, +-1e308, subnormals
    st.sampled_from([0.0, -0.0, -1.0, 1e-300, 10_000_000.0, 10_000_001.0, 1e308, float("nan"), float("-inf")]),
)
NUMBER_TEXT = st.one_of(FLOATS.map(repr), st.sampled_from(["abc", "", "1,5", "0x10", "1e", "--", "NaN", "-inf"]))
SMALL_GPUS = st.one_of(st.integers(min_value=-3, max_value=12),  # enumerated quickly
                       st.sampled_from([100_001, 10**9, 10**30, -(10**12)]))  # refused at once
TOPS = st.one_of(st.integers(min_value=-2, max_value=40), st.sampled_from([10**18, 10**40]))
KNOWN_GPUS = st.sampled_from(["H100", "H100-SXM", "h100", "A100", "A100-SXM4-80GB", "A40", "B200"])
GPU_NAMES = st.one_of(KNOWN_GPUS, KNOWN_GPUS, KNOWN_GPUS,  # repeats and aliases of one GPU included
                      st.text(alphabet=string.ascii_letters + string.digits + " -_./", min_size=0, max_size=12))
OPTIONAL = {"--input-tokens": NUMBER_TEXT, "--output-tokens": NUMBER_TEXT, "--visual-tokens": NUMBER_TEXT,
            "--itl-slo-ms": NUMBER_TEXT, "--ttft-slo-ms": NUMBER_TEXT,
            "--max-gpus": SMALL_GPUS.map(str), "--top": TOPS.map(str),
            "--batch": st.integers(min_value=-2, max_value=2048).map(str)}


@st.composite
def recommend_args(draw):
    args = ["recommend", "--model", draw(st.sampled_from(["meta-llama/Llama-3.1-8B", "Qwen/Qwen3-8B",
                                                          "meta-llama/Llama-3.1-8B", "no/such-model"]))]
    for gpu in draw(st.lists(GPU_NAMES, min_size=1, max_size=3)):
        args += ["--gpu", gpu]
    chosen = draw(st.lists(st.sampled_from(sorted(OPTIONAL)), unique=True, max_size=4))
    if "--max-gpus" not in chosen:
        args += ["--max-gpus", "2"]  # the default (8) is fine but slower
    for opt in chosen:
        args += [opt, draw(OPTIONAL[opt])]
    if draw(st.booleans()):
        args.append("--json")
    return args


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=recommend_args())
def test_recommend_options_never_crash(run_cli, args):
    code, out = run_cli(*args)
    assert code in (0, 2), f"exit {code} for {args}: {out}"
    assert "Traceback" not in out and "internal error" not in out, (args, out)
    if code == 2:
        lines = out.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, out)
    elif "--json" in args:
        payload = json.loads(out)
        assert payload["recommendations"] and payload["recommendations"][0]["rank"] == 1
