"""TensorBoard event writing without the tensorboard package (not in the locked stack).

tf.summary.scalar / image live in tensorboard; the core `tf.summary.write` op does not. These
helpers write the same summaries (plugin "scalars" / "images") TensorBoard displays.
"""

import os

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

import keras


def _metadata(plugin):
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin)).SerializeToString()


def write_scalar(name, value, step):
    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step,
                     metadata=_metadata("scalars"))


def write_image(name, image_uint8, step):
    """image_uint8: (H, W, 3) uint8, PNG-encoded as TensorBoard's image plugin expects."""
    h, w = image_uint8.shape[:2]
    png = tf.io.encode_png(tf.constant(image_uint8))
    tensor = tf.stack([tf.constant(str(w)), tf.constant(str(h)), png])
    tf.summary.write(name, tensor, step=step, metadata=_metadata("images"))


class ScalarSummary(keras.callbacks.Callback):
    """Epoch-end training metrics (the Mean trackers) as TensorBoard scalars at the global step."""

    def __init__(self, log_dir, step_fn):
        super().__init__()
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "train"))
        self.step_fn = step_fn

    def on_epoch_end(self, epoch, logs=None):
        step = self.step_fn()
        with self.writer.as_default():
            for name, value in (logs or {}).items():
                write_scalar(name, value, step)
        self.writer.flush()
