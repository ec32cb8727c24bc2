"""TensorBoard summaries of training (`tensorboard --logdir <out>/logs` from the venv)."""

import posixpath

import keras
import numpy as np
import tensorflow as tf

from amc_tf import inputs


class ScalarSummary(keras.callbacks.Callback):
    """Epoch-end training metrics (the Mean trackers) as TensorBoard scalars at the global step."""

    def __init__(self, log_dir, step_fn):
        super().__init__()
        self.writer = tf.summary.create_file_writer(posixpath.join(log_dir, "train"))
        self.step_fn = step_fn

    def on_epoch_end(self, epoch, logs=None):
        with self.writer.as_default(step=self.step_fn()):
            for name, value in (logs or {}).items():
                tf.summary.scalar(name, float(value))
        self.writer.flush()


def video_grid(video):
    """[x_1 | x_2 ... x_T] per row, rows stacked: float (B, T, H, W, 3) -> uint8 (B*H, T*W, 3)."""
    video = np.asarray(inputs.to_uint8(video))
    b, t, h, w, c = video.shape
    return video.transpose(0, 2, 1, 3, 4).reshape(b * h, t * w, c)


class VideoSummary(keras.callbacks.Callback):
    """Generated videos of a fixed eval batch, with its own classes and with the next class (the
    motion must change with the condition), next to the real clips."""

    def __init__(self, log_dir, family, model, config, batch, step_fn, seed=0):
        super().__init__()
        self.writer = tf.summary.create_file_writer(posixpath.join(log_dir, "videos"))
        self.family, self.model_, self.config = family, model, config
        self.batch = {k: np.asarray(v) for k, v in batch.items()}
        self.step_fn = step_fn
        size = len(self.batch["motion_class"])
        self.noise = np.random.default_rng(seed).standard_normal(
            (size,) + tuple(family.noise_shape(config))).astype(np.float32)

    def _generate(self, conditions):
        generator = self.family.generator(self.model_)
        return self.family.generate(generator, dict(conditions, noise=self.noise), self.config)

    def on_epoch_end(self, epoch, logs=None):
        conditions = inputs.clip_conditions(self.batch, self.family)
        other = dict(conditions,
                     motion_class=(conditions["motion_class"] + 1) % self.config.num_classes)
        if "velocity" in other:     # another clip's velocities go with another class
            other["velocity"] = np.roll(other["velocity"], 1, axis=0)
        with self.writer.as_default(step=self.step_fn()):
            for name, video in (("real", self.batch["video"]),
                                ("generated", self._generate(conditions)),
                                ("generated_other_motion", self._generate(other))):
                tf.summary.image(name, video_grid(video)[None])
        self.writer.flush()
