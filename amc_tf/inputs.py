"""The one input contract: preprocessed clips and requests -> model inputs, and back.

Training batches, the velocity bank, the evaluation, the serving signatures and `inference` all
call these functions, so one clip gives identical model inputs on every path:

  frames     every `config.frame_stride`-th of the clip's 32 frames (§3.1: T frames), uint8 ->
             float32 in [-1, 1], resized to `config.frame_size` (area when shrinking: it
             averages like the 64x64 crop itself; bilinear when growing)
  velocity   the clip's per-frame deltas summed over each stride, clipped to [-1, 1] again
             (the range of D_m's tanh velocity head, §3.2): (T-1, 2k)
  class      int32; subject: a hash (clips of another subject give the mismatched y_a')
"""

import tensorflow as tf

from amc_tf.data import features


def to_model_range(images_uint8):
    """uint8 [0, 255] -> float32 [-1, 1] (the generator's tanh range)."""
    return tf.cast(images_uint8, tf.float32) / 127.5 - 1.0


def to_uint8(images):
    """float [-1, 1] -> uint8 [0, 255], rounded and clipped."""
    return tf.cast(tf.round(tf.clip_by_value((tf.cast(images, tf.float32) + 1.0) * 127.5,
                                             0.0, 255.0)), tf.uint8)


def resize_frames(frames, size):
    """(..., h, w, 3) -> (..., size, size, 3): area when shrinking, bilinear when growing."""
    height = frames.shape[-3]
    if height == size:
        return frames
    method = "area" if height is not None and height > size else "bilinear"
    shape = tf.shape(frames)
    flat = tf.reshape(frames, tf.concat([[-1], shape[-3:]], axis=0))
    flat = tf.image.resize(flat, [size, size], method=method)
    return tf.reshape(flat, tf.concat([shape[:-3], [size, size, 3]], axis=0))


def clip_velocity(velocity, config):
    """Per-frame velocities (B, >= (T-1) * stride, 2k) -> the model's (B, T-1, 2k)."""
    stride, steps = config.frame_stride, config.num_frames - 1
    velocity = velocity[:, :steps * stride]
    if stride > 1:
        velocity = tf.reduce_sum(
            tf.reshape(velocity, [-1, steps, stride, 2 * config.num_keypoints]), axis=2)
        velocity = tf.clip_by_value(velocity, -1.0, 1.0)
    return velocity


def strided_frames(video_uint8, config):
    """A clip's (B, 32, 64, 64, 3) uint8 frames -> every `config.frame_stride`-th, still uint8
    (a judge's training cache keeps clips at this step)."""
    return video_uint8[:, ::config.frame_stride]


def frames_to_model(frames_uint8, config):
    """`strided_frames` -> the model's float32 (B, T, S, S, 3) in [-1, 1]."""
    return resize_frames(to_model_range(frames_uint8), config.frame_size)


def clip_to_model_inputs(clips, config):
    """Parsed clips (`features.parse_examples`) -> the model's batch for `config`.

    Returns video float32 (B, T, S, S, 3) in [-1, 1] (frame 0 is y_a), velocity (B, T-1, 2k),
    motion_class int32 (B,), and subject_id int64 (B,) when the clips carry a subject.
    """
    out = {"video": frames_to_model(strided_frames(clips[features.VIDEO], config), config),
           "velocity": clip_velocity(clips[features.VELOCITY], config),
           "motion_class": tf.cast(clips[features.MOTION_CLASS], tf.int32)}
    if features.SUBJECT in clips:
        out["subject_id"] = tf.strings.to_hash_bucket_fast(clips[features.SUBJECT], 2 ** 30)
    return out


def appearance_to_model(appearance_uint8, config):
    """A request's y_a, uint8 (B, 64, 64, 3) -> float32 (B, S, S, 3) as a clip's frame 0."""
    return resize_frames(to_model_range(appearance_uint8), config.frame_size)


def video_to_clip_size(video):
    """Generated float (B, T, S, S, 3) -> uint8 (B, T, 64, 64, 3), the clips' (and API's) size."""
    return to_uint8(resize_frames(video, features.FRAME_SIZE))


def clip_conditions(batch, family):
    """The conditions (family contract) of prepared clips with their own y_a and velocities,
    without noise: what reconstruction and the training summaries generate from."""
    out = {"motion_class": batch["motion_class"]}
    if family.uses_appearance:
        out["appearance"] = batch["video"][:, 0]
    if family.uses_velocity:
        out["velocity"] = batch["velocity"]
    return out
