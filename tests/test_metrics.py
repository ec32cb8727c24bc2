"""The metric suite: IS, H(y), H(y|v), SSIM, PSNR, Fréchet distance on hand-made cases, the
suite's statistics, and its TFMA metrics in a real TFMA run with the pipeline's EvalConfig."""
import math
import os

import numpy as np
import pytest

from amc_tf.metrics import ClassDistributionStats, inception_score, inter_entropy, intra_entropy


def test_hand_computed_values():
    p = np.array([[1.0, 0.0], [0.0, 1.0]])
    # Confident and balanced: H(y) = log 2, H(y|v) = 0, IS = 2 (the number of classes).
    assert inter_entropy(p) == pytest.approx(math.log(2))
    assert intra_entropy(p) == pytest.approx(0.0, abs=1e-9)
    assert inception_score(p) == pytest.approx(2.0)
    # Every video uniform: H(y|v) = log 3 and IS = 1.
    u = np.full((5, 3), 1 / 3)
    assert intra_entropy(u) == pytest.approx(math.log(3))
    assert inception_score(u) == pytest.approx(1.0)
    # Mixed case against the KL definition, Eq. 11.
    q = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    marginal = q.mean(0)
    kl = np.mean(np.sum(q * np.log(q / marginal), axis=1))
    assert inception_score(q) == pytest.approx(math.exp(kl))


def test_stats_merge_equals_one_pass():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 4))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    a = ClassDistributionStats().add(p[:15])
    b = ClassDistributionStats().add(p[15:])
    whole = ClassDistributionStats().add(p)
    merged = a.merge(b)
    assert merged.inception_score() == pytest.approx(whole.inception_score())
    assert merged.inter_entropy() == pytest.approx(whole.inter_entropy())


def test_rejects_non_probabilities():
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(np.array([[2.0, 3.0]]))
    with pytest.raises(ValueError, match="finite"):
        inception_score(np.array([[np.nan, 1.0]]))


# ---------------------------------------------------------------------- SSIM, PSNR, Fréchet
def test_ssim_of_identical_videos_is_one_and_psnr_of_a_known_mse_is_exact():
    from amc_tf.metrics import reconstruction
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (2, 5, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(reconstruction.video_ssim(real, real).numpy(), 1.0, atol=1e-6)
    # Every pixel of frames 2..T off by 5: MSE 25, PSNR = 10 log10(255^2 / 25).
    off = real.astype(np.int16)
    off[:, 1:] = np.where(off[:, 1:] > 127, off[:, 1:] - 5, off[:, 1:] + 5)
    off[:, 0] = 0                               # frame 1 is y_a: never compared
    psnr = reconstruction.video_psnr(real, off.astype(np.uint8)).numpy()
    np.testing.assert_allclose(psnr, 10 * np.log10(255.0 ** 2 / 25.0), rtol=1e-5)
    # SSIM drops with the change and stays in (0, 1).
    ssim = reconstruction.video_ssim(real, off.astype(np.uint8)).numpy()
    assert np.all((ssim > 0) & (ssim < 1))


def test_ssim_matches_the_reference_gaussian_window():
    """11x11 Gaussian, sigma 1.5, C1 = (0.01)^2, C2 = (0.03)^2 on [0, 1], valid windows: a
    direct numpy computation of one frame pair equals the library's."""
    from amc_tf.metrics import reconstruction
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (1, 2, 24, 24, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    x, y = a[0, 1].astype(np.float64) / 255, b[0, 1].astype(np.float64) / 255
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()

    def filt(img):
        out = np.zeros((img.shape[0] - 10, img.shape[1] - 10, img.shape[2]))
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[i, j] = np.tensordot(w, img[i:i + 11, j:j + 11], axes=([0, 1], [0, 1]))
        return out
    mx, my = filt(x), filt(y)
    sxx, syy, sxy = filt(x * x) - mx ** 2, filt(y * y) - my ** 2, filt(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ssim = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    got = reconstruction.video_ssim(a, b).numpy()[0]   # one compared frame: frame 2
    assert got == pytest.approx(ssim.mean(), abs=2e-4)


def test_ssim_psnr_reject_float_videos():
    from amc_tf.metrics import reconstruction
    with pytest.raises(ValueError, match="uint8"):
        reconstruction.video_psnr(np.zeros((1, 2, 8, 8, 3), np.float32),
                                  np.zeros((1, 2, 8, 8, 3), np.float32))


def test_frechet_distance_of_a_set_with_itself_is_zero_and_grows_with_noise():
    from amc_tf.metrics.frechet import FeatureMoments, frechet_distance, moments_distance
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    same = moments_distance(FeatureMoments().add(x), FeatureMoments().add(x))
    assert same == pytest.approx(0.0, abs=1e-6)
    distances = [moments_distance(FeatureMoments().add(x),
                                  FeatureMoments().add(x + rng.normal(scale=s, size=x.shape)))
                 for s in (0.1, 0.5, 1.0, 2.0)]
    assert distances == sorted(distances) and distances[0] > 0
    # Closed form for diagonal Gaussians: |mu|^2 + sum (sqrt(a) - sqrt(b))^2.
    d = frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.array([3.0, 0.0]),
                         np.diag([4.0, 9.0]))
    assert d == pytest.approx(9.0 + 1.0 + 1.0)
    # Moments merge exactly.
    merged = FeatureMoments().add(x[:150]).merge(FeatureMoments().add(x[150:]))
    mean, cov = merged.mean_and_covariance()
    np.testing.assert_allclose(mean, x.mean(0))
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False), atol=1e-9)


# ---------------------------------------------------------------------- the suite
def _suite_outputs(num, num_classes=3, seed=0):
    from amc_tf.metrics import suite
    rng = np.random.default_rng(seed)

    def probs():
        logits = rng.normal(size=(num, num_classes)) * 3
        return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return {suite.PROBABILITIES: probs(), suite.REAL_PROBABILITIES: probs(),
            suite.GENERATED_FEATURES: rng.normal(size=(num, 4)),
            suite.REAL_FEATURES: rng.normal(size=(num, 4)) + 1.0,
            suite.SSIM: rng.uniform(0, 1, num), suite.PSNR: rng.uniform(10, 30, num),
            suite.KEYPOINT_PROBABILITIES: probs(), suite.REAL_KEYPOINT_PROBABILITIES: probs()}


def test_suite_values_by_hand_and_merge():
    from amc_tf.metrics import suite
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    out = _suite_outputs(8)
    stats = suite.SuiteStats().add(out, labels)
    acc = (out[suite.PROBABILITIES].argmax(1) == labels).mean()
    real = (out[suite.REAL_PROBABILITIES].argmax(1) == labels).mean()
    assert stats.value(suite.ACCURACY) == pytest.approx(acc)
    assert stats.value(suite.REAL_ACCURACY) == pytest.approx(real)
    assert stats.value(suite.ACCURACY_RATIO) == pytest.approx(acc / real)
    assert stats.value(suite.SSIM_METRIC) == pytest.approx(out[suite.SSIM].mean())
    assert stats.value(suite.INCEPTION_SCORE) == pytest.approx(
        inception_score(out[suite.PROBABILITIES]))
    a = suite.SuiteStats().add({k: v[:3] for k, v in out.items()}, labels[:3])
    b = suite.SuiteStats().add({k: v[3:] for k, v in out.items()}, labels[3:])
    merged = a.merge(b)
    for metric in suite.METRICS:
        assert merged.value(metric) == pytest.approx(stats.value(metric)), metric


def test_suite_table_says_not_applicable_never_zero():
    from amc_tf.metrics import suite
    labels = np.array([0, 1, 2, 0])
    out = {k: v for k, v in _suite_outputs(4).items() if k not in (suite.SSIM, suite.PSNR)}
    metrics = suite.applicable_metrics(out)
    assert suite.SSIM_METRIC not in metrics and suite.PSNR_METRIC not in metrics
    table = suite.per_class_table(out, labels, ["a", "b", "c"], metrics)
    text = suite.format_table(table)
    ssim_line = next(line for line in text.splitlines() if line.startswith("ssim"))
    assert "n/a" in ssim_line and "0.0000" not in ssim_line
    assert set(table) == {"overall", "a", "b", "c"}


def test_real_clip_bound_is_the_class_statistics_of_the_real_clips():
    """TwoStreamVAN's Table 2 "real" rows: IS, H(y), H(y|v) of the judge on the real clips."""
    from amc_tf.metrics import class_distribution, suite
    labels = np.array([0, 1, 2, 0, 1])
    out = _suite_outputs(5)
    table = suite.per_class_table(out, labels, ["a", "b", "c"], suite.applicable_metrics(out))
    real = out[suite.REAL_PROBABILITIES]
    overall = table["overall"]
    assert overall[suite.REAL_INCEPTION_SCORE] == pytest.approx(
        class_distribution.inception_score(real))
    assert overall[suite.REAL_INTER_ENTROPY] == pytest.approx(
        class_distribution.inter_entropy(real))
    assert overall[suite.REAL_INTRA_ENTROPY] == pytest.approx(
        class_distribution.intra_entropy(real))
    # The generated videos' figures are the generated probabilities' (a different set here).
    assert overall[suite.INCEPTION_SCORE] == pytest.approx(
        class_distribution.inception_score(out[suite.PROBABILITIES]))
    # Exact when merged, like every figure of the suite.
    halves = suite.SuiteStats().add({k: v[:2] for k, v in out.items()}, labels[:2]).merge(
        suite.SuiteStats().add({k: v[2:] for k, v in out.items()}, labels[2:]))
    assert halves.value(suite.REAL_INCEPTION_SCORE) == pytest.approx(
        overall[suite.REAL_INCEPTION_SCORE])
    # Without the real clips' probabilities there is no bound.
    no_real = {k: v for k, v in out.items() if k != suite.REAL_PROBABILITIES}
    table = suite.per_class_table(no_real, labels, ["a", "b", "c"],
                                  suite.applicable_metrics(no_real))
    assert suite.REAL_INCEPTION_SCORE not in table["overall"]


def _write_keyed_examples(path, labels):
    """Examples holding only `key` (their row in the fake model's outputs) and the label."""
    import tensorflow as tf
    with tf.io.TFRecordWriter(path) as writer:
        for key, label in enumerate(labels):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "key": tf.train.Feature(int64_list=tf.train.Int64List(value=[key])),
                "motion_class": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            })).SerializeToString())
    return path


def _export_suite_model(path, outputs):
    """A SavedModel whose `classify_generated` signature returns fixed suite outputs per
    example `key`: the Evaluator's view of an export, without a generator."""
    import tensorflow as tf

    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.tables = {k: tf.constant(v, tf.float32) for k, v in outputs.items()}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def classify(self, examples):
            parsed = tf.io.parse_example(
                examples, {"key": tf.io.FixedLenFeature([], tf.int64)})
            out = {k: tf.gather(v, parsed["key"]) for k, v in self.tables.items()}
            out["predicted_class"] = tf.argmax(out["probabilities"], axis=-1)
            return out

    model = Model()
    tf.saved_model.save(model, path, signatures={"classify_generated": model.classify,
                                                 "serving_default": model.classify})


def test_tfma_run_reports_the_whole_suite_per_slice_and_gates_on_the_ratio(tmp_path):
    """The pipeline's EvalConfig in a real TFMA run: every suite metric, overall and per
    class, equals SuiteStats over the same outputs; the blessing follows the ratio gate."""
    import tensorflow as tf
    import tensorflow_model_analysis as tfma

    from amc_tf.metrics import suite
    from pipeline.amc_pipeline import build_eval_config

    labels = np.array([0, 0, 1, 1, 2, 2, 0, 1, 2, 1])
    out = _suite_outputs(len(labels), seed=3)
    data = _write_keyed_examples(str(tmp_path / "examples.tfrecord"), labels)
    model_path = str(tmp_path / "model")
    _export_suite_model(model_path, out)
    expected = suite.per_class_table(out, labels, ["0", "1", "2"], suite.METRICS)
    ratio = expected["overall"][suite.ACCURACY_RATIO]

    for threshold, blessed in ((ratio - 0.01, True), (ratio + 0.01, False)):
        eval_config = build_eval_config(threshold, 0.0, None, uses_appearance=True)
        output = str(tmp_path / f"out_{threshold}")
        result = tfma.run_model_analysis(
            eval_shared_model=tfma.default_eval_shared_model(model_path, eval_config=eval_config),
            eval_config=eval_config, data_location=data, output_path=output)
        by_slice = {}
        for slice_key, metrics in result.slicing_metrics:
            by_slice[slice_key] = {k: float(v["doubleValue"])   # NaN comes as "NaN"
                                   for k, v in metrics[""][""].items() if "doubleValue" in v}
        for metric in suite.METRICS:
            assert by_slice[()][metric] == pytest.approx(expected["overall"][metric],
                                                         rel=1e-5), metric
            for c in range(3):
                want = expected[str(c)][metric]
                got = by_slice[(("motion_class", c),)][metric]
                assert got == pytest.approx(want, rel=1e-4, abs=1e-6) or \
                    (math.isnan(want) and math.isnan(got)), (metric, c)
        validation = tfma.load_validation_result(output)
        assert validation.validation_ok == blessed


def test_tfma_change_threshold_against_a_baseline(tmp_path):
    """With a baseline, TFMA keys each example's outputs by model name: the suite reads the
    candidate's and the baseline's own, and the ratio's change threshold compares them."""
    import tensorflow as tf
    import tensorflow_model_analysis as tfma

    from amc_tf.metrics import suite
    from pipeline.amc_pipeline import build_eval_config

    labels = np.array([0, 1, 2, 0, 1, 2])
    data = _write_keyed_examples(str(tmp_path / "examples.tfrecord"), labels)
    good, bad = _suite_outputs(6, seed=1), _suite_outputs(6, seed=1)
    good[suite.PROBABILITIES] = np.eye(3)[labels] * 0.9 + 0.1 / 3     # all right
    bad[suite.PROBABILITIES] = np.eye(3)[(labels + 1) % 3] * 0.9 + 0.1 / 3   # all wrong
    for name, out in (("good", good), ("bad", bad)):
        _export_suite_model(str(tmp_path / name), out)
    for candidate, baseline, blessed in (("good", "bad", True), ("bad", "good", False)):
        eval_config = build_eval_config(0.0, 0.0, 0.05, uses_appearance=True)
        eval_config.model_specs[0].name = "candidate"
        baseline_spec = eval_config.model_specs.add()
        baseline_spec.CopyFrom(eval_config.model_specs[0])
        baseline_spec.name, baseline_spec.is_baseline = "baseline", True
        models = [tfma.default_eval_shared_model(str(tmp_path / candidate), model_name="candidate",
                                                 eval_config=eval_config),
                  tfma.default_eval_shared_model(str(tmp_path / baseline), model_name="baseline",
                                                 eval_config=eval_config)]
        output = str(tmp_path / f"out_{candidate}")
        tfma.run_model_analysis(eval_shared_model=models, eval_config=eval_config,
                                data_location=data, output_path=output)
        assert tfma.load_validation_result(output).validation_ok == blessed


def test_eval_config_leaves_out_what_a_family_cannot_have():
    from amc_tf.metrics import suite
    from amc_tf.metrics.tfma_metrics import METRIC_CLASSES
    from pipeline.amc_pipeline import build_eval_config
    config = build_eval_config(0.5, 0.9, 0.05, uses_appearance=False, keypoint_judge=False)
    names = {m.class_name for m in config.metrics_specs[0].metrics}
    reverse = {v: k for k, v in METRIC_CLASSES.items()}
    assert reverse[suite.SSIM_METRIC] not in names and reverse[suite.PSNR_METRIC] not in names
    assert reverse[suite.KEYPOINT_ACCURACY] not in names
    assert reverse[suite.ACCURACY_RATIO] in names and reverse[suite.CLASSIFIER_FID] in names
