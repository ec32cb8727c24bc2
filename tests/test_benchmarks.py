"""The training benchmark's figures and generator profile, at the test preset (seconds)."""

import importlib.util
import os

import pytest

BENCH = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "bench_train.py")


@pytest.fixture(scope="module")
def bench_train():
    spec = importlib.util.spec_from_file_location("bench_train", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_train_row_and_generator_profile(bench_train):
    row = bench_train.bench_preset("test", 2, 1, peak=100.0, profile=True)
    assert row["step_gflop"] > 0 and row["clips_per_s"] > 0
    assert row["generator_gflop"] > 0 and row["latency_over_bound"] > 0
    assert row["generator_xla_latency_ms"] > 0 and row["generator_ms_per_video_at_batch_8"] > 0
    assert row["classifier_step_s"] > 0
    profile = row["generator_profile"]
    types = {r["op"]: r for r in profile["by_type"]}
    # Grappler fuses conv + bias + activation; the profile must still find those FLOPs.
    convs = [r for op, r in types.items() if "Conv2D" in op]
    assert convs and sum(r["mflop"] for r in convs) > 0.5 * 1e3 * row["generator_gflop"]
    assert profile["kernels_per_call"] > 10 and profile["kernel_ms"] > 0
    assert profile["top_nodes"][0]["kernel_ms"] >= profile["top_nodes"][-1]["kernel_ms"]
