"""amc_tf.training: the API the TFX Trainer modules and `amc-tf train` share.

train_classifier(config, train_pattern, eval_pattern, out_dir, steps, strategy=None)
train_gan(config, train_pattern, eval_pattern, out_dir, steps, strategy=None, resume=True,
          log_dir=None)
build_velocity_bank(file_pattern, config)
"""

# Real-clip eval metrics of the classifier, written next to classifier.keras.
CLASSIFIER_METRICS_FILE = "classifier_metrics.json"


def __getattr__(name):
    # Lazy: `amc_tf.training.cli` must import without TensorFlow.
    if name in ("train_classifier", "train_gan", "build_velocity_bank", "TrainingCheckpoint"):
        from amc_tf.training import train
        return getattr(train, name)
    if name == "generated_video_accuracy":
        from amc_tf.training.evaluate import generated_video_accuracy
        return generated_video_accuracy
    raise AttributeError(name)
