"""Video generation from an appearance, a class and (optionally) velocities (§3.1)."""

import numpy as np


def sample_velocity(velocity_bank, motion_class, rng):
    """y^v_m for each requested class, drawn from training clips of that class (§3.1)."""
    bank_v = np.asarray(velocity_bank["velocity"], np.float32)
    bank_c = np.asarray(velocity_bank["motion_class"])
    out = []
    for c in np.asarray(motion_class).reshape(-1):
        rows = np.flatnonzero(bank_c == c)
        if rows.size == 0:
            raise ValueError(f"the velocity bank has no clip of class {c}")
        out.append(bank_v[rng.choice(rows)])
    return np.stack(out)


def generate(generator, appearance_uint8, motion_class, seed=0, velocity=None,
             velocity_bank=None, config=None):
    """Generates videos: uint8 (B, T, H, W, 3) whose frame 0 is the appearance.

    Args:
        generator: amc_tf.models.Generator.
        appearance_uint8: uint8 (B, H, W, 3) (or (H, W, 3)), y_a; resized to the preset's size.
        motion_class: int (B,) or a scalar, y^l_m.
        seed: seeds z ~ N(0, I) and the velocity draw: same seed, same video.
        velocity: optional float32 (B, T-1, 2k) in [-1, 1]; else sampled from `velocity_bank`
            (dict from amc_tf.training.build_velocity_bank) among clips of the same class.
        config: the AMCConfig (default: the generator's).
    """
    import tensorflow as tf
    config = config or generator.config
    appearance = np.asarray(appearance_uint8)
    if appearance.ndim == 3:
        appearance = appearance[None]
    batch = appearance.shape[0]
    motion_class = np.broadcast_to(np.asarray(motion_class, np.int32), (batch,))
    rng = np.random.default_rng(seed)
    if velocity is None:
        if velocity_bank is None:
            raise ValueError("give velocity or a velocity_bank to sample it from")
        velocity = sample_velocity(velocity_bank, motion_class, rng)
    velocity = np.asarray(velocity, np.float32)
    noise = rng.standard_normal((batch, config.noise_dim)).astype(np.float32)
    image = tf.cast(appearance, tf.float32) / 127.5 - 1.0
    if image.shape[1] != config.frame_size or image.shape[2] != config.frame_size:
        image = tf.image.resize(image, [config.frame_size, config.frame_size], method="area")
    frames = generator({"appearance": image, "motion_class": tf.constant(motion_class),
                        "velocity": tf.constant(velocity), "noise": tf.constant(noise)},
                       training=False)
    video = tf.concat([image[:, None], frames], axis=1)
    return tf.cast(tf.round(tf.clip_by_value((video + 1.0) * 127.5, 0, 255)), tf.uint8).numpy()
