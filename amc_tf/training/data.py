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


# The judge's training clips are decoded once and kept in memory (uint8, every frame_stride-th
# frame) when they take at most this many bytes: reading the GZIP records and parsing them again
# every pass is most of the cpu judge's step on 2 cores (docs/measurements.md, "The judge's
# input pipeline"). Larger splits (the paper presets' datasets) are read every pass.
JUDGE_CACHE_BYTES = 2 ** 30


def make_classifier_dataset(file_pattern, config, batch_size, shuffle=True, repeat=True,
                            drop_remainder=True, seed=None, record_filter=None, augment=False,
                            cache_bytes=0):
    """(video, motion_class) pairs for Keras fit/evaluate of the motion classifier, the videos
    at the judge's frame size; `augment` applies `appearance_jitter` (training batches). With
    `cache_bytes`, shuffled repeated clips that take at most that many bytes are decoded once
    and kept in memory (the same batches as without, in the same order for one `seed`)."""
    judged = lambda video: inputs.resize_frames(video, config.judge_frame_size)
    cached = (_cached_clip_batches(file_pattern, config, batch_size, drop_remainder, seed,
                                   record_filter, cache_bytes)
              if cache_bytes and shuffle and repeat else None)
    if cached is not None:
        ds = cached.map(lambda frames, motion_class: (
            judged(inputs.frames_to_model(frames, config)), motion_class),
            num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = make_model_dataset(file_pattern, config, batch_size, shuffle, repeat,
                                drop_remainder, seed, record_filter)
        ds = ds.map(lambda b: (judged(b["video"]), b["motion_class"]))
    if augment:
        ds = ds.map(lambda video, motion_class: (appearance_jitter(video), motion_class),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _cached_clip_batches(file_pattern, config, batch_size, drop_remainder, seed, record_filter,
                         cache_bytes):
    """Batches of (uint8 `inputs.strided_frames`, motion_class) from clips parsed once and
    cached in memory, in `features.shuffled_passes` order; None when the clips would take
    more than `cache_bytes` (one read of the records counts them)."""
    kept = features.records(file_pattern, record_filter)
    count = int(kept.reduce(0, lambda n, _: n + 1))
    frames = len(range(0, features.NUM_FRAMES, config.frame_stride))
    needed = count * frames * features.FRAME_SIZE ** 2 * features.CHANNELS
    if needed > cache_bytes:
        print(f"[train] the {count} clips of {file_pattern} take {needed / 2 ** 30:.1f} GiB, "
              f"more than the {cache_bytes / 2 ** 30:.1f} GiB kept in memory: they are read "
              f"from the records every pass", flush=True)
        return None
    clips = kept.batch(64).map(
        lambda serialized: _strided_clips(features.parse_examples(serialized,
                                                                  config.num_keypoints), config),
        num_parallel_calls=tf.data.AUTOTUNE).unbatch().cache()
    return features.shuffled_passes(clips, seed, repr(file_pattern), count=count).batch(
        batch_size, drop_remainder=drop_remainder)


def _strided_clips(clips, config):
    return inputs.strided_frames(clips[features.VIDEO], config), clips[features.MOTION_CLASS]
