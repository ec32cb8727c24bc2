"""Generation from requests (§3.1), for every model family.

The serving signatures (serving/export.py), the evaluation protocol (amc_tf/evaluation.py) and
library users all call these, so the same seed gives the same video everywhere: z and the
velocity draw come from stateless random ops keyed on the per-example seed.
"""

import numpy as np
import tensorflow as tf

from amc_tf import inputs

# Second half of the stateless seed pair: one stream per random quantity.
_VELOCITY_STREAM = 1
_NOISE_STREAM = 2


class VelocityBank(tf.Module):
    """y^v_m of the training clips by class; at inference a row of the requested class is drawn
    (§3.1). A class without training velocities draws from the whole bank rather than failing.

    Args:
      velocity: float32 (N, T-1, 2k), the model's velocities (`inputs.clip_to_model_inputs`).
      motion_class: int (N,).
      num_classes: C.
    """

    def __init__(self, velocity, motion_class, num_classes, name="velocity_bank"):
        super().__init__(name=name)
        velocity = np.asarray(velocity, np.float32)
        motion_class = np.asarray(motion_class).astype(np.int64).reshape(-1)
        if velocity.ndim != 3 or velocity.shape[0] != motion_class.shape[0]:
            raise ValueError(f"velocity bank must be (N, steps, 2k) with N classes; got velocity "
                             f"{velocity.shape}, motion_class {motion_class.shape}")
        if velocity.shape[0] == 0:
            raise ValueError("velocity bank is empty: no training velocities to sample from")
        if motion_class.min() < 0 or motion_class.max() >= num_classes:
            raise ValueError(f"velocity bank classes must be in [0, {num_classes}); got "
                             f"[{motion_class.min()}, {motion_class.max()}]")
        if not np.all(np.isfinite(velocity)):
            raise ValueError("velocity bank holds non-finite values")
        order = np.argsort(motion_class, kind="stable")
        counts = np.bincount(motion_class, minlength=num_classes)[:num_classes]
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.per_class = [int(c) for c in counts]
        self.classes_without_velocities = [int(c) for c in np.flatnonzero(counts == 0)]
        offsets[counts == 0] = 0
        counts = np.where(counts == 0, len(motion_class), counts)
        self.shape = velocity.shape
        # Variables, not constants: the bank goes to the checkpoint, not the graph proto.
        self.velocity = tf.Variable(velocity[order], trainable=False, name="velocity")
        self.offsets = tf.Variable(offsets.astype(np.int64), trainable=False, name="offsets")
        self.counts = tf.Variable(counts.astype(np.int64), trainable=False, name="counts")

    def sample(self, motion_class, seed):
        """One row of each example's class, picked by its int64 seed: (B, T-1, 2k)."""
        cls = tf.cast(motion_class, tf.int64)
        offset = tf.gather(self.offsets, cls)
        count = tf.gather(self.counts, cls)
        u = tf.map_fn(
            lambda s: tf.random.stateless_uniform(
                [], seed=tf.stack([s, tf.constant(_VELOCITY_STREAM, tf.int64)])),
            tf.cast(seed, tf.int64), fn_output_signature=tf.TensorSpec([], tf.float32))
        row = offset + tf.minimum(
            tf.cast(tf.floor(u * tf.cast(count, tf.float32)), tf.int64), count - 1)
        return tf.gather(self.velocity, row)


def noise_from_seed(seed, shape):
    """z ~ N(0, I) of each example, (B, *shape), from its int64 seed."""
    shape = list(shape)
    return tf.map_fn(
        lambda s: tf.random.stateless_normal(
            shape, seed=tf.stack([s, tf.constant(_NOISE_STREAM, tf.int64)])),
        tf.cast(seed, tf.int64), fn_output_signature=tf.TensorSpec(shape, tf.float32))


def request_conditions(family, config, motion_class, seed, appearance=None, velocity=None,
                       velocity_bank=None):
    """The family's conditions for a request: y_a (already at the model's size and range), the
    class, the velocities given or drawn from the bank by the seed, and z from the seed."""
    motion_class = tf.cast(motion_class, tf.int32)
    out = {"motion_class": motion_class, "noise": noise_from_seed(seed, family.noise_shape(config))}
    if family.uses_appearance:
        if appearance is None:
            raise ValueError(f"{family.name} generates from an appearance: give one")
        out["appearance"] = appearance
    if family.uses_velocity:
        if velocity is None:
            if velocity_bank is None:
                raise ValueError("give velocities or a velocity bank to draw them from")
            velocity = velocity_bank.sample(motion_class, seed)
        out["velocity"] = tf.cast(velocity, tf.float32)
    return out


def generate_video(family, generator, config, appearance_uint8, motion_class, seed,
                   velocity=None, velocity_bank=None):
    """uint8 (B, T, 64, 64, 3): the request's appearance as frame 0 (families that take one),
    then the generated frames at the clips' size. Returns (video, conditions)."""
    appearance = None
    if family.uses_appearance:
        appearance = inputs.appearance_to_model(appearance_uint8, config)
    conditions = request_conditions(family, config, motion_class, seed, appearance, velocity,
                                    velocity_bank)
    video = inputs.video_to_clip_size(family.generate(generator, conditions, config))
    if family.uses_appearance:   # the caller's own pixels, not a resized round trip
        video = tf.concat([tf.cast(appearance_uint8, tf.uint8)[:, None], video[:, 1:]], axis=1)
    return video, conditions


def generate(family, generator, config, appearance_uint8, motion_class, seed=0, velocity=None,
             velocity_bank=None):
    """Library entry: numpy in, uint8 (B, T, 64, 64, 3) out; same seed, same video as the
    server's `generate` signature.

    Args:
      appearance_uint8: (B, 64, 64, 3) or (64, 64, 3), y_a (ignored by families without one).
      motion_class: int (B,) or a scalar.
      seed: int or (B,) ints.
      velocity: optional float32 (B, T-1, 2k); else drawn from `velocity_bank` (a VelocityBank).
    """
    batch = 1
    if appearance_uint8 is not None:
        appearance_uint8 = np.asarray(appearance_uint8, np.uint8)
        if appearance_uint8.ndim == 3:
            appearance_uint8 = appearance_uint8[None]
        batch = appearance_uint8.shape[0]
    motion_class = np.asarray(motion_class, np.int32).reshape(-1)
    batch = max(batch, motion_class.shape[0])
    motion_class = np.broadcast_to(motion_class, (batch,))
    seed = np.broadcast_to(np.asarray(seed, np.int64).reshape(-1), (batch,))
    video, _ = generate_video(family, generator, config, appearance_uint8, motion_class, seed,
                              velocity, velocity_bank)
    return video.numpy()
