"""IS, H(y), H(y|v): hand-computed values, and the TFMA metrics in a real TFMA run."""
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


def _export_probability_model(path, table):
    """A SavedModel whose `classify_generated` signature maps examples to fixed probabilities."""
    import tensorflow as tf

    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.constant(table, tf.float32)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def classify(self, examples):
            parsed = tf.io.parse_example(
                examples, {"key": tf.io.FixedLenFeature([], tf.int64)})
            probabilities = tf.gather(self.table, parsed["key"])
            return {"probabilities": probabilities,
                    "predicted_class": tf.argmax(probabilities, axis=-1)}

    model = Model()
    tf.saved_model.save(model, path, signatures={"classify_generated": model.classify,
                                                 "serving_default": model.classify})


def test_tfma_run_reports_accuracy_is_and_entropies_per_slice(tmp_path):
    import tensorflow as tf
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.proto import config_pb2

    table = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.6, 0.3, 0.1]])
    # (key, motion_class): keys 0-2 are right for their class, key 3 predicts 0 for class 2.
    rows = [(0, 0), (0, 0), (1, 1), (1, 1), (2, 2), (3, 2)]
    data = str(tmp_path / "examples.tfrecord")
    with tf.io.TFRecordWriter(data) as writer:
        for key, label in rows:
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "key": tf.train.Feature(int64_list=tf.train.Int64List(value=[key])),
                "motion_class": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            })).SerializeToString())
    model_path = str(tmp_path / "model")
    _export_probability_model(model_path, table)

    eval_config = config_pb2.EvalConfig(
        model_specs=[config_pb2.ModelSpec(signature_name="classify_generated",
                                    label_key="motion_class", prediction_key="probabilities")],
        slicing_specs=[config_pb2.SlicingSpec(), config_pb2.SlicingSpec(feature_keys=["motion_class"])],
        metrics_specs=[config_pb2.MetricsSpec(metrics=[
            config_pb2.MetricConfig(class_name="SparseCategoricalAccuracy"),
            config_pb2.MetricConfig(class_name="InceptionScore", module="amc_tf.metrics.tfma_metrics"),
            config_pb2.MetricConfig(class_name="InterEntropy", module="amc_tf.metrics.tfma_metrics"),
            config_pb2.MetricConfig(class_name="IntraEntropy", module="amc_tf.metrics.tfma_metrics"),
        ])])
    result = tfma.run_model_analysis(
        eval_shared_model=tfma.default_eval_shared_model(model_path, eval_config=eval_config),
        eval_config=eval_config, data_location=data, output_path=str(tmp_path / "out"))

    by_slice = {}
    for slice_key, metrics in result.slicing_metrics:
        values = metrics[""][""]
        by_slice[slice_key] = {k: v["doubleValue"] for k, v in values.items()
                               if "doubleValue" in v}
    overall = by_slice[()]
    probabilities = table[[k for k, _ in rows]]
    assert overall["sparse_categorical_accuracy"] == pytest.approx(5 / 6)
    assert overall["inception_score"] == pytest.approx(inception_score(probabilities), rel=1e-5)
    assert overall["inter_entropy_h_y"] == pytest.approx(inter_entropy(probabilities), rel=1e-5)
    assert overall["intra_entropy_h_y_given_v"] == pytest.approx(
        intra_entropy(probabilities), rel=1e-5)
    class_2 = by_slice[(("motion_class", 2),)]
    assert class_2["sparse_categorical_accuracy"] == pytest.approx(0.5)
    assert class_2["inception_score"] == pytest.approx(inception_score(table[[2, 3]]), rel=1e-5)
