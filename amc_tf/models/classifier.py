"""The 3D-CNN motion classifier of appendix B.3 (Figure E), trained on real clips; it judges the
videos of every model family (§4.1)."""

import types

import keras
from keras import ops

from amc_tf.models.common import Network, batch_norm
from amc_tf.models.family_config import judge_frame_size


def classifier_input(video):
    """B.3's input rule on a video (batch, T, H, W, 3): drop the first frames, repeat the
    first/last remaining frames.

    For T = 32: drop 4 frames, pad the first and the last frame twice each -> 32 frames. Other T
    drop T/8 frames and pad as evenly.
    """
    drop = video.shape[1] // 8
    if drop == 0:
        return video
    kept = video[:, drop:]
    before, after = drop // 2, drop - drop // 2
    first = ops.repeat(kept[:, :1], before, axis=1)
    last = ops.repeat(kept[:, -1:], after, axis=1)
    return ops.concatenate([first, kept, last], axis=1)


@keras.saving.register_keras_serializable(package="amc_tf")
class MotionClassifier(Network):
    """c-way 3D CNN: conv3d(64) - lrelu - conv3d(128) - BN - lrelu - conv3d(256) - BN - lrelu -
    conv3d(512) - flatten - fc(128) - BN - lrelu - dropout(0.5) - fc(c).

    Args:
        num_classes: c, the motion classes.
        num_frames: T of the videos it classifies.
        frame_size: H = W.
        filters: filters of the four 4x4x4 conv3d layers.
        strides: their strides.
        fc_units: units of the hidden fully-connected layer.
        dropout: dropout rate before the logits.
        leaky_relu_slope: negative slope of the leaky ReLUs.
        sync_batchnorm: BN statistics over the global batch under tf.distribute.

    Input: a prepared video float32 (batch, T, H, W, 3) in [-1, 1], the full clip (y_a +
    generated frames or a real clip); the B.3 input rule is applied inside. Frames of a whole
    multiple of frame_size are area-downscaled to it first (a judge smaller than the model's
    frames). Output: logits (batch, c).

    Example, B.3's classifier for NATOPS:
        MotionClassifier(num_classes=24, num_frames=32, frame_size=64,
                         filters=(64, 128, 256, 512), strides=(2, 2, 2, 4), fc_units=128,
                         dropout=0.5, leaky_relu_slope=0.2, sync_batchnorm=True)
    """

    def __init__(self, num_classes, num_frames, frame_size, filters, strides, fc_units, dropout,
                 leaky_relu_slope, sync_batchnorm, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.num_frames = num_frames
        self.frame_size = frame_size
        self.filters = tuple(filters)
        self.strides = tuple(strides)
        self.fc_units = fc_units
        self.dropout_rate = dropout
        self.leaky_relu_slope = leaky_relu_slope
        self.sync_batchnorm = sync_batchnorm
        self.convs = [keras.layers.Conv3D(f, 4, strides=s, padding="same", name=f"conv3d_{i + 1}")
                      for i, (f, s) in enumerate(zip(filters, strides))]
        self.norms = [None, batch_norm(sync_batchnorm, "bn2"), batch_norm(sync_batchnorm, "bn3"),
                      None]
        self.flatten = keras.layers.Flatten()
        self.fc = keras.layers.Dense(fc_units, name="fc")
        self.fc_norm = batch_norm(sync_batchnorm, "fc_bn")
        self.dropout = keras.layers.Dropout(dropout)
        self.out = keras.layers.Dense(num_classes, name="logits")

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "num_frames": self.num_frames, "frame_size": self.frame_size,
                "filters": self.filters, "strides": self.strides, "fc_units": self.fc_units,
                "dropout": self.dropout_rate, "leaky_relu_slope": self.leaky_relu_slope,
                "sync_batchnorm": self.sync_batchnorm}

    @classmethod
    def from_config(cls, config):
        if "config" in config:    # a file saved when the classifier took the whole AMCConfig
            return build_classifier(types.SimpleNamespace(**config["config"]),
                                    name=config.get("name"))
        return super().from_config(config)

    def dummy_inputs(self, batch_size=1):
        return ops.zeros((batch_size, self.num_frames, self.frame_size, self.frame_size, 3))

    def lrelu(self, x):
        return ops.leaky_relu(x, self.leaky_relu_slope)

    def embed(self, video, training=False):
        """φ(x): (batch, T/64 ... , 512) before flattening (2 x 2 x 512 for T=32, 64x64)."""
        expected = (self.num_frames, self.frame_size, self.frame_size)
        t, h, w = tuple(video.shape[1:4])
        factor = h // self.frame_size if h and h % self.frame_size == 0 else 0
        if t != self.num_frames or h != w or not factor:
            # Clips are prepared by amc_tf.inputs (frame stride, frame size) before they get here.
            raise ValueError(f"the classifier takes videos of (T, H, W) = {expected} (or H = W "
                             f"a multiple of {self.frame_size}), got {(t, h, w)}")
        if factor > 1:
            # Area downscaling by a whole factor: the mean of each factor x factor patch, as
            # inputs.resize_frames prepares clips.
            video = ops.average_pool(ops.reshape(video, (-1, h, w, video.shape[-1])), factor,
                                     factor)
            video = ops.reshape(video, (-1, t) + tuple(video.shape[1:]))
        x = ops.cast(classifier_input(video), self.compute_dtype)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = conv(x)
            if norm is not None:
                x = norm(x, training=training)
            if i < len(self.convs) - 1:
                x = self.lrelu(x)
        return x

    def penultimate(self, video, training=False):
        """The fc(128) - BN - lrelu features before dropout and the logits: (batch, fc_units),
        the feature space of the suite's classifier FID."""
        x = self.flatten(self.embed(video, training=training))
        return self.lrelu(self.fc_norm(self.fc(x), training=training))

    def call(self, video, training=False):
        x = self.dropout(self.penultimate(video, training=training), training=training)
        return ops.cast(self.out(x), "float32")


def build_classifier(config, **kwargs):
    """The B.3 classifier of any family's config: reads num_classes, num_frames, frame_size
    (clf_frame_size where set), leaky_relu_slope, sync_batchnorm and clf_filters, clf_strides,
    clf_fc_units, clf_dropout. kwargs go to keras.Model (name, ...)."""
    return MotionClassifier(
        num_classes=config.num_classes, num_frames=config.num_frames,
        frame_size=judge_frame_size(config),
        filters=config.clf_filters, strides=config.clf_strides,
        fc_units=config.clf_fc_units, dropout=config.clf_dropout,
        leaky_relu_slope=config.leaky_relu_slope, sync_batchnorm=config.sync_batchnorm, **kwargs)
