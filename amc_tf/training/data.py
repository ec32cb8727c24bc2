"""Input pipelines: preprocessed clips (amc_tf.data.features) -> model batches (amc_tf.inputs)."""

import tensorflow as tf

from amc_tf import inputs
from amc_tf.data import features

TRAIN_PART, VALIDATION_PART = "train", "validation"


def holdout(part, fraction):
    """A record filter keeping the `part` ("train" or "validation") of a split: `fraction` of the
    source clips (augmented copies of one clip stay together, so validation never sees a copy
    of a training clip) by a hash of the clip id before its '#<copy>' suffix (§4.1: ~10 % of
    the training clips validate the classifier)."""
    if part not in (TRAIN_PART, VALIDATION_PART):
        raise ValueError(f"holdout part must be {TRAIN_PART!r} or {VALIDATION_PART!r}, got {part!r}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    buckets = 1000
    cut = int(round(fraction * buckets))

    def keep(serialized):
        clip_id = tf.io.parse_single_example(
            serialized, {features.CLIP_ID: tf.io.FixedLenFeature([], tf.string)})[features.CLIP_ID]
        source = tf.strings.split(clip_id, "#")[0]
        in_validation = tf.strings.to_hash_bucket_fast(source, buckets) < cut
        return in_validation if part == VALIDATION_PART else tf.logical_not(in_validation)
    return keep


def make_model_dataset(file_pattern, config, batch_size, shuffle=True, repeat=True,
                       drop_remainder=True, seed=None, record_filter=None):
    """tf.data of model batches (`inputs.clip_to_model_inputs`) from preprocessed TFRecords;
    `record_filter` (e.g. `holdout(...)`) keeps some serialized records only."""
    ds = features.make_dataset(file_pattern, config.num_keypoints, batch_size, shuffle=shuffle,
                               repeat=repeat, drop_remainder=drop_remainder, seed=seed,
                               record_filter=record_filter)
    return ds.map(lambda clips: inputs.clip_to_model_inputs(clips, config),
                  num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def appearance_jitter(video, max_shift=0.1):
    """Per-clip appearance augmentation of prepared videos (B, T, H, W, 3) in [-1, 1]: a random
    colour-channel order, brightness / contrast change and a shift of up to `max_shift` of the
    frame, the same for every frame of a clip. The judge must tell motions of unseen subjects
    (the eval split is by subject), so clothing colour and position must not be a cue."""
    size = video.shape[2]

    def one(clip):
        clip = tf.gather(clip, tf.random.shuffle(tf.range(3)), axis=-1)
        contrast = tf.random.uniform([], 0.7, 1.3)
        brightness = tf.random.uniform([], -0.2, 0.2)
        clip = tf.clip_by_value(clip * contrast + brightness, -1.0, 1.0)
        pad = max(1, int(round(size * max_shift)))
        padded = tf.pad(clip, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="SYMMETRIC")
        dy, dx = (tf.random.uniform([], 0, 2 * pad + 1, tf.int32) for _ in range(2))
        return padded[:, dy:dy + size, dx:dx + size]
    return tf.map_fn(one, video, fn_output_signature=tf.TensorSpec(video.shape[1:], video.dtype))


def make_classifier_dataset(file_pattern, config, batch_size, shuffle=True, repeat=True,
                            drop_remainder=True, seed=None, record_filter=None, augment=False):
    """(video, motion_class) pairs for Keras fit/evaluate of the motion classifier, the videos
    at the judge's frame size; `augment` applies `appearance_jitter` (training batches)."""
    ds = make_model_dataset(file_pattern, config, batch_size, shuffle, repeat, drop_remainder,
                            seed, record_filter)
    judged = lambda b: inputs.resize_frames(b["video"], config.judge_frame_size)
    if augment:
        return ds.map(lambda b: (appearance_jitter(judged(b)), b["motion_class"]),
                      num_parallel_calls=tf.data.AUTOTUNE)
    return ds.map(lambda b: (judged(b), b["motion_class"]))
