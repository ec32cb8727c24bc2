"""What training writes, by name, and the gfile helpers that write it (local, gs://, ram://).

No TensorFlow at import time: the CLI and pipeline result readers use the names.
"""

import json
import posixpath

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
# Real-clip eval metrics of the classifier, written next to classifier.keras.
CLASSIFIER_METRICS_FILE = "classifier_metrics.json"
# `amc-tf train`'s generate-then-classify result, at the top of its output directory.
EVALUATION_FILE = "evaluation.json"


def write_json(path, value):
    import tensorflow as tf
    tf.io.gfile.makedirs(posixpath.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(value, indent=2, sort_keys=True))


def read_json(path):
    import tensorflow as tf
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path} does not exist")
    with tf.io.gfile.GFile(path) as f:
        return json.loads(f.read())


def read_examples_summary(examples_dir):
    """`summary.json` of preprocessed examples (`amc-tf preprocess` or ExampleGen's artifact):
    the dataset style and the class names travel with the data there."""
    import tensorflow as tf

    from amc_tf.data.preprocess import SUMMARY_FILE
    path = posixpath.join(examples_dir, SUMMARY_FILE)
    if not tf.io.gfile.exists(path):
        what = "does not exist" if not tf.io.gfile.exists(examples_dir) else \
            f"holds no {SUMMARY_FILE}"
        raise FileNotFoundError(
            f"{examples_dir} {what}: --data takes `amc-tf preprocess` output (raw clips go "
            f"through `amc-tf preprocess --dataset D --raw RAW --out DATA` first)")
    summary = read_json(path)
    for key in ("dataset", "class_names"):
        if key not in summary:
            raise ValueError(f"{posixpath.join(examples_dir, SUMMARY_FILE)} lacks {key!r}")
    return summary


def write_config(out_dir, config):
    """`out_dir/config.json`: the config the model was built with (`config.to_json()`)."""
    import tensorflow as tf
    tf.io.gfile.makedirs(out_dir)
    with tf.io.gfile.GFile(posixpath.join(out_dir, CONFIG_FILE), "w") as f:
        f.write(config.to_json())
