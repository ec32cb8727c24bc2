"""Input pipelines: preprocessed clips (amc_tf.data.features) -> model-ready batches."""

import tensorflow as tf

from amc_tf.data import features


def prepare_batch(batch, config):
    """Parsed clips -> the model's batch dict for `config`.

    video uint8 (B, 32, 64, 64, 3) -> float32 (B, T, S, S, 3) in [-1, 1], taking every
    `frame_stride`-th frame and resizing to `frame_size`; velocity (B, 31, 2k) -> (B, T-1, 2k),
    the per-frame deltas summed over each stride and clipped to [-1, 1] again; motion_class
    int32 (B,); subject_id int64 (B,) (a hash of the subject: clips of another subject give
    the mismatched appearance y_a').
    """
    stride, steps = config.frame_stride, config.num_frames - 1
    video = tf.cast(batch[features.VIDEO][:, ::stride], tf.float32) / 127.5 - 1.0
    size = video.shape[2]
    if size != config.frame_size:
        flat = tf.reshape(video, [-1, size, size, 3])
        flat = tf.image.resize(flat, [config.frame_size, config.frame_size], method="area")
        video = tf.reshape(flat, [-1, config.num_frames, config.frame_size, config.frame_size, 3])
    velocity = batch[features.VELOCITY][:, :steps * stride]
    if stride > 1:
        velocity = tf.reduce_sum(tf.reshape(velocity, [-1, steps, stride, config.velocity_dim]),
                                 axis=2)
        velocity = tf.clip_by_value(velocity, -1.0, 1.0)
    out = {"video": video, "velocity": velocity,
           "motion_class": tf.cast(batch[features.MOTION_CLASS], tf.int32)}
    if features.SUBJECT in batch:
        out["subject_id"] = tf.strings.to_hash_bucket_fast(batch[features.SUBJECT], 2 ** 30)
    return out


def make_model_dataset(file_pattern, config, batch_size, shuffle=True, repeat=True,
                       drop_remainder=True, seed=None):
    """tf.data of prepared batches (see prepare_batch) from preprocessed TFRecords."""
    ds = features.make_dataset(file_pattern, config.num_keypoints, batch_size, shuffle=shuffle,
                               repeat=repeat, num_frames=config.source_frames,
                               drop_remainder=drop_remainder, seed=seed)
    return ds.map(lambda b: prepare_batch(b, config), num_parallel_calls=tf.data.AUTOTUNE) \
        .prefetch(tf.data.AUTOTUNE)


def make_classifier_dataset(file_pattern, config, batch_size, shuffle=True, repeat=True,
                            drop_remainder=True, seed=None):
    """(video, motion_class) pairs for Keras fit/evaluate of the motion classifier."""
    ds = make_model_dataset(file_pattern, config, batch_size, shuffle, repeat, drop_remainder,
                            seed)
    return ds.map(lambda b: (b["video"], b["motion_class"]))
