"""Input pipelines: preprocessed clips (amc_tf.data.features) -> model batches (amc_tf.inputs)."""

import tensorflow as tf

from amc_tf import inputs
from amc_tf.data import features


def make_model_dataset(file_pattern, config, batch_size, shuffle=True, repeat=True,
                       drop_remainder=True, seed=None):
    """tf.data of model batches (`inputs.clip_to_model_inputs`) from preprocessed TFRecords."""
    ds = features.make_dataset(file_pattern, config.num_keypoints, batch_size, shuffle=shuffle,
                               repeat=repeat, drop_remainder=drop_remainder, seed=seed)
    return ds.map(lambda clips: inputs.clip_to_model_inputs(clips, config),
                  num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def make_classifier_dataset(file_pattern, config, batch_size, shuffle=True, repeat=True,
                            drop_remainder=True, seed=None):
    """(video, motion_class) pairs for Keras fit/evaluate of the motion classifier."""
    ds = make_model_dataset(file_pattern, config, batch_size, shuffle, repeat, drop_remainder,
                            seed)
    return ds.map(lambda b: (b["video"], b["motion_class"]))
