"""The training benchmark's figures and generator profile, at the test preset (seconds)."""

import importlib.util
import json
import os

import numpy as np
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
    # The executed work: less than the traced graph (the tape's unused gradients are pruned),
    # and what the runtime's own partition graphs ran, within rounding of small fused ops.
    assert row["step_gflop"] < 0.9 * row["step_gflop_traced"]
    assert abs(row["step_gflop_executed_graph"] / row["step_gflop"] - 1) < 0.02, row
    assert abs(row["generator_gflop_executed_graph"] / row["generator_gflop"] - 1) < 0.02, row
    phases = row["memory_gib"]
    assert set(phases) == {"build", "train_step", "generate_1", "generate_1_xla", "generate_8",
                           "classifier_step"}
    assert all(p["peak_gib"] >= p["start_gib"] > 0 for p in phases.values()), phases
    assert max(p["peak_gib"] for p in phases.values()) == row["peak_rss_gib"]
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


def test_bench_train_counts_another_familys_executed_work(bench_train):
    """ImaGINator's row: the FLOPs of its own traced train step and generator; generation
    timed as a median of calls (--gen-calls)."""
    row = bench_train.bench_preset("test", 2, 1, peak=100.0, model="imaginator", gen_calls=4)
    assert row["model"] == "imaginator" and row["frames"] == 8
    assert row["step_gflop"] > 0 and row["generator_gflop"] > 0
    assert row["generator_latency_ms"] > 0 and row["classifier_step_s"] > 0


def test_executed_flops_leave_out_the_gradient_nothing_uses(bench_train):
    """A step that asks the tape for the input's gradient and never uses it: the traced graph
    holds its Conv2DBackpropInput (and the bias's gradient), the executed work does not; both counts of executed work
    (the dependency walk and the runtime's partition graphs) agree."""
    import tensorflow as tf
    x = tf.random.normal((2, 8, 8, 3))
    conv = tf.keras.layers.Conv2D(4, 3, padding="same")
    conv.build(x.shape)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(conv(x)))
        kernel_grad, _ = tape.gradient(loss, [conv.kernel, x])     # x's gradient: unused
        conv.kernel.assign_sub(1e-3 * kernel_grad)
        return loss

    counts = bench_train.run_and_count(step, x)
    one_conv = 2 * (2 * 8 * 8 * 4) * (3 * 3 * 3)     # 2 x multiply-adds of each conv op
    bias_grad = 2 * 8 * 8 * 4 - 4                    # the bias's gradient, not asked for either
    graph = step.get_concrete_function(x).graph
    assert [op.type for op in graph.get_operations()].count("Conv2DBackpropInput") == 1
    assert counts["traced"] - counts["live"] == one_conv + bias_grad
    # Grappler also folds some elementwise ops (the square's gradient): a few hundred FLOPs.
    assert abs(counts["executed"] - counts["live"]) <= 0.02 * counts["live"], counts
    assert one_conv * 2 <= counts["executed"] <= counts["live"] < one_conv * 2.2


def test_flops_of_convolutions_the_profiler_does_not_count(bench_train):
    """3D convolutions and ImaGINator's 3D transposed convolutions: 2 x multiply-adds, forward
    and both gradients, from the executed graph's shapes."""
    import tensorflow as tf
    x = tf.zeros((2, 4, 8, 8, 3))                       # (B, T, H, W, Cin)
    conv = tf.keras.layers.Conv3D(5, (2, 3, 3), padding="same")
    transposed = tf.keras.layers.Conv3DTranspose(5, (2, 4, 4), strides=(2, 2, 2),
                                                 padding="same")

    def step(x):
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(conv(x)) + tf.reduce_sum(transposed(x))
        return tape.gradient(y, conv.trainable_variables + transposed.trainable_variables)
    concrete = tf.function(step).get_concrete_function(x)
    flops = bench_train._node_flops(concrete.graph)
    by_type = {}
    for op in concrete.graph.get_operations():
        by_type.setdefault(op.type, []).append(flops.get(op.name, 0))
    forward = 2 * (2 * 4 * 8 * 8 * 5) * (2 * 3 * 3 * 3)      # each output: 2*3*3*3 MACs
    spread = 2 * (2 * 4 * 8 * 8 * 3) * (2 * 4 * 4 * 5)       # each input: 2*4*4*5 MACs
    # The transposed conv is a Conv3DBackpropInputV2 and its input gradient a Conv3D, the
    # reverse of the conv's; each gradient costs what its forward op does.
    for op_type in ("Conv3D", "Conv3DBackpropInputV2", "Conv3DBackpropFilterV2"):
        assert sorted(by_type[op_type]) == sorted([forward, spread]), op_type


# ---------------------------------------------------------------------- quality (issue 14)
def _videos(seed=0, batch=3, frames=6):
    """Real clips of 8x8-pixel blocks: frame 0 = y_a, then shifted copies (motion)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (batch, 8, 8, 3)).astype(np.uint8).repeat(8, 1).repeat(8, 2)
    return np.stack([np.roll(base, t, axis=2) for t in range(frames)], axis=1)


def _blur(video):
    x = video.astype(np.float32)
    for axis in (2, 3):
        x = (np.roll(x, 1, axis) + x + np.roll(x, -1, axis)) / 3.0
    return x.round().astype(np.uint8)


def test_sharpness_ratio_reads_blur_and_the_first_frame_artifact():
    from amc_tf.metrics import sharpness
    real = _videos()
    same = sharpness.quality_report(real, real)
    assert same["sharpness_ratio"] == pytest.approx(1.0)
    blurred = real.copy()
    blurred[:, 1:] = _blur(real[:, 1:])
    report = sharpness.quality_report(blurred, real)
    assert report["sharpness_ratio"] < 0.6
    # By region: a textured still background and a square moving over it; blurring only the
    # pixels that never move shows in "static" alone.
    rng = np.random.default_rng(1)
    scene = rng.integers(0, 256, (2, 1, 8, 8, 3)).astype(np.uint8).repeat(4, 2).repeat(4, 3)
    scene = scene.repeat(6, 1)
    for t in range(6):
        scene[:, t, 8:16, 2 + 3 * t:10 + 3 * t] = 255
    still = np.all(scene == scene[:, :1], axis=(1, 4))[:, None, ..., None]
    background = np.where(still, _blur(scene), scene)
    regions = sharpness.sharpness_by_region(background, scene)
    assert 0.0 < regions["moving"][0] < 0.5
    assert regions["static"][1] < 0.9 and regions["moving"][1] > regions["static"][1]
    everywhere = sharpness.sharpness_by_region(_blur(scene), scene)
    assert everywhere["static"][1] < 0.9 and everywhere["moving"][1] < 0.9
    assert same["sharpness_ratio_static"] == same["sharpness_ratio_moving"] == pytest.approx(1.0)
    # A bright blob in the top-right corner of the first generated frame only (issue 14).
    blob = real.copy()
    blob[:, 1, :16, -16:] = 255
    assert sharpness.quality_report(blob, real)["first_frame_excess"] > \
        1.2 * same["first_frame_excess"]
    # Colours drifting away from y_a's.
    drift = real.copy()
    drift[:, 1:, ..., 0] = drift[:, 1:, ..., 0] // 2
    assert sharpness.quality_report(drift, real)["colour_drift_generated"] > \
        same["colour_drift_real"] + 0.1
    with pytest.raises(ValueError, match="differ in shape"):
        sharpness.quality_report(real[:, :4], real)


def test_bench_quality_on_an_exported_model(tmp_path):
    """The quality benchmark's row for an exported (untrained) model on serialized clips."""
    import fixtures
    from amc_tf.models import get_family
    family = get_family("imaginator")
    export_dir = str(tmp_path / "saved_model")
    _, c, model = fixtures.export_test_model(family, export_dir)
    data = str(tmp_path / "data")
    fixtures.write_clips(data, 5, 3, c.num_keypoints, seed=4, split="eval")
    fixtures.write_summary(data, 3)
    spec = importlib.util.spec_from_file_location(
        "bench_quality", os.path.join(os.path.dirname(BENCH), "bench_quality.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    row = bench.main(["--saved-model", export_dir, "--data", data, "--batch-size", "2",
                      "--json", str(tmp_path / "row.json"), "--round-trip", "64", "32"])
    assert row["clips"] == 5 and row["model"] == "imaginator"
    # The real clips through 64x64 are themselves; through 32x32 they lose detail.
    assert row["sharpness_ratio_real_through_64"] == pytest.approx(1.0)
    assert 0.0 < row["sharpness_ratio_real_through_32"] < 0.9
    assert 0.0 < row["sharpness_ratio"] < 10.0 and row["first_frame_excess"] > 0.0
    assert json.load(open(tmp_path / "row.json"))["sharpness_ratio"] == row["sharpness_ratio"]
    # A training output gives the same row through the library (same seeds, same videos).
    from amc_tf.models.saving import save_model
    from amc_tf.training import files
    model_dir = str(tmp_path / "run")
    save_model(family.generator(model), os.path.join(model_dir, family.generator_file()))
    files.write_config(model_dir, c)
    again = bench.main(["--model-dir", model_dir, "--model", "imaginator", "--data", data])
    for key in ("sharpness_ratio", "first_frame_excess", "colour_drift_generated"):
        assert again[key] == pytest.approx(row[key], rel=1e-3, abs=1e-4), key


def test_bench_step_variants_rows():
    """The variants benchmark times both step kinds of each variant, as ratios to the first."""
    spec = importlib.util.spec_from_file_location(
        "bench_step_variants", os.path.join(os.path.dirname(BENCH), "bench_step_variants.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.main(["--preset", "test", "--steps", "1", "--rounds", "2", "{}",
                       '{"gram": "channel"}'])
    assert [r["variant"] for r in rows] == ["{}", '{"gram": "channel"}']
    assert rows[0]["warmup_ratio"] == rows[0]["algorithm_1_ratio"] == 1.0
    assert all(r["warmup_s"] > 0 and r["algorithm_1_s"] > 0 for r in rows)


def test_bench_judges_trains_the_judges_of_a_changed_config(tmp_path, capsys):
    """bench_judges prints what the judges reach on real eval clips; --set changes the preset's
    config (here the judge's dropout and frame size) and is echoed with the figures."""
    spec = importlib.util.spec_from_file_location(
        "bench_judges", os.path.join(os.path.dirname(BENCH), "bench_judges.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--preset", "test", "--clips", "24", "--classifier-steps", "2",
                       "--augment-copies", "1", "--work-dir", str(tmp_path),
                       "--set", "clf_dropout=0.25", "--set", "clf_frame_size=16"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index('{\n  "dataset"'):])
    assert report["overrides"] == {"clf_dropout": 0.25, "clf_frame_size": 16}
    assert report["judge_frame_size"] == 16 and report["eval_clips"] > 0
    assert 0.0 <= report["b3_classifier"]["accuracy"] <= 1.0
    with pytest.raises(ValueError, match="has no field 'clf_nope'"):
        bench.main(["--preset", "test", "--work-dir", str(tmp_path), "--set", "clf_nope=1"])


def test_bench_judge_step_rows(tmp_path):
    """The judge-variants benchmark times the three step kinds of each variant (network alone,
    cached pipeline, records read every pass), as ratios to the first variant's (here the test
    preset's judge and the same at half the frame size)."""
    import fixtures as testing
    spec = importlib.util.spec_from_file_location(
        "bench_judge_step", os.path.join(os.path.dirname(BENCH), "bench_judge_step.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    data = str(tmp_path / "data")
    testing.write_summary(data, 3)
    testing.write_clips(data, 8, 3, 9, seed=0)
    rows = bench.main(["--data", data, "--preset", "test", "--steps", "1", "--rounds", "2",
                       "{}", '{"clf_frame_size": 16}'])
    assert [r["variant"] for r in rows] == ["{}", '{"clf_frame_size": 16}']
    assert rows[0]["step_ratio"] == rows[0]["fed_step_ratio"] == 1.0
    assert all(r["step_s"] > 0 and r["fed_step_s"] > 0 and r["streamed_step_s"] > 0
               for r in rows)
    assert rows[0]["streamed_step_ratio"] == rows[0]["streamed_step_s"] / rows[0]["fed_step_s"]
