"""The evaluation protocol and metric suite in process (no TFX): `amc-tf train` after training,
and anything holding a generator and its judges. The same outputs and statistics as the
Evaluator's (amc_tf/evaluation.py, amc_tf/metrics/suite.py)."""

import numpy as np
import tensorflow as tf

from amc_tf import evaluation
from amc_tf.data import features
from amc_tf.metrics import suite


def serialized_batches(file_pattern, batch_size):
    """The serialized clips of `file_pattern` in file order, (B,) string tensors."""
    files = tf.io.gfile.glob(file_pattern)
    if not files:
        raise FileNotFoundError(f"no TFRecord files match {file_pattern!r}")
    compression = "GZIP" if files[0].endswith(".gz") else None
    return tf.data.TFRecordDataset(files, compression_type=compression).batch(batch_size)


def collect_outputs(evaluate_batch, file_pattern, num_keypoints, batch_size=16):
    """Runs `evaluate_batch(serialized (B,) string tensor) -> {output: (B, ...)}` over every clip
    of `file_pattern`; returns (outputs as numpy arrays over all clips, labels (N,))."""
    outputs, labels = {}, []
    for serialized in serialized_batches(file_pattern, batch_size):
        parsed = features.parse_examples(serialized, num_keypoints)
        labels.append(parsed[features.MOTION_CLASS].numpy())
        for name, value in evaluate_batch(serialized).items():
            outputs.setdefault(name, []).append(np.asarray(value))
    if not labels:
        raise ValueError(f"no eval clip in {file_pattern}: nothing to evaluate")
    return {k: np.concatenate(v) for k, v in outputs.items()}, np.concatenate(labels)


def evaluate_generator(family, generator, classifier, eval_pattern, config, class_names,
                       velocity_bank=None, keypoint_judge=None, batch_size=16):
    """The suite overall and per class: {"overall": {metric: value}, class name: {...}}."""
    def evaluate_batch(serialized):
        clips = features.parse_examples(serialized, config.num_keypoints)
        return evaluation.evaluation_outputs(family, generator, config, clips, classifier,
                                             velocity_bank, keypoint_judge)
    outputs, labels = collect_outputs(evaluate_batch, eval_pattern, config.num_keypoints,
                                      batch_size)
    metrics = suite.applicable_metrics(outputs)
    return suite.per_class_table(outputs, labels, class_names, metrics)
