"""TwoStreamVAN's image discriminator D_I (Table 4: a patch D) and video discriminator D_V
(Table 5, with class logits AC-GAN style, Eq. 7). Both return logits (the paper's sigmoid sits
in the cross-entropy)."""

import keras
from keras import ops

from amc_tf.models.common import Network, batch_norm
from amc_tf.models.twostreamvan.streams import levels_of


@keras.saving.register_keras_serializable(package="amc_tf.twostreamvan")
class ImageDiscriminator(Network):
    """D_I(x): is each patch of the frame real? conv2d k4 s2 per filter - LReLU (BN from the
    second), then conv2d(1, k4, s2): (S / 16)^2 patch logits (4x4 at 64x64).

    Args:
        frame_size: S, a multiple of 16.
        filters: widths of the stride-2 convolutions before the logit conv (16, 32, 64).
        leaky_relu_slope: negative slope of the leaky ReLUs.

    Input frames (batch, S, S, 3) in [-1, 1]; returns logits float32 (batch, patches).

    Example, the paper's D_I:
        ImageDiscriminator(frame_size=64, filters=(16, 32, 64), leaky_relu_slope=0.2)
    """

    def __init__(self, frame_size, filters, leaky_relu_slope, **kwargs):
        super().__init__(**kwargs)
        if frame_size % 2 ** (len(filters) + 1):
            raise ValueError(f"{len(filters) + 1} stride-2 convolutions need a frame size "
                             f"divisible by {2 ** (len(filters) + 1)}")
        self.frame_size = frame_size
        self.filters = tuple(filters)
        self.leaky_relu_slope = leaky_relu_slope
        self.convs = [keras.layers.Conv2D(f, 4, strides=2, padding="same", use_bias=i == 0,
                                          name=f"conv{i + 1}") for i, f in enumerate(filters)]
        self.norms = [batch_norm(False, f"conv{i + 1}_bn") for i in range(1, len(filters))]
        self.out = keras.layers.Conv2D(1, 4, strides=2, padding="same",
                                       name=f"conv{len(filters) + 1}")

    def get_config(self):
        return {**super().get_config(), "frame_size": self.frame_size, "filters": self.filters,
                "leaky_relu_slope": self.leaky_relu_slope}

    def dummy_inputs(self, batch_size=1):
        return ops.zeros((batch_size, self.frame_size, self.frame_size, 3))

    def call(self, frames, training=False):
        x = ops.cast(frames, self.compute_dtype)
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i:
                x = self.norms[i - 1](x, training=training)
            x = ops.leaky_relu(x, self.leaky_relu_slope)
        logits = self.out(x)
        return ops.cast(ops.reshape(logits, (ops.shape(logits)[0], -1)), "float32")


@keras.saving.register_keras_serializable(package="amc_tf.twostreamvan")
class VideoDiscriminator(Network):
    """D_V(v) -> (real/fake logit, class logits): conv3d k4 strides (1, 2, 2) "same" per
    filter - LReLU (BN from the second) down to 4x4, then conv3d(1 + K, (min(T, 4), 4, 4))
    valid, averaged over the remaining time steps. The class is not an input (AC-GAN).

    Args:
        num_frames: T.
        frame_size: S = 8 * 2**levels; len(filters) = levels + 1.
        num_classes: K.
        filters: widths of the stride-(1, 2, 2) convolutions.
        leaky_relu_slope: negative slope of the leaky ReLUs.

    Input videos (batch, T, S, S, 3) in [-1, 1]; returns (logit (batch,), class logits
    (batch, K)), float32.

    Example, the paper's MUG D_V:
        VideoDiscriminator(num_frames=8, frame_size=64, num_classes=6,
                           filters=(64, 128, 256, 512), leaky_relu_slope=0.2)
    """

    def __init__(self, num_frames, frame_size, num_classes, filters, leaky_relu_slope,
                 **kwargs):
        super().__init__(**kwargs)
        if len(filters) != levels_of(frame_size) + 1:
            raise ValueError(f"{levels_of(frame_size) + 1} stride-2 convolutions take "
                             f"{frame_size}x{frame_size} to 4x4")
        self.num_frames = num_frames
        self.frame_size = frame_size
        self.num_classes = num_classes
        self.filters = tuple(filters)
        self.leaky_relu_slope = leaky_relu_slope
        self.convs = [keras.layers.Conv3D(f, 4, strides=(1, 2, 2), padding="same",
                                          use_bias=i == 0, name=f"conv{i + 1}")
                      for i, f in enumerate(filters)]
        self.norms = [batch_norm(False, f"conv{i + 1}_bn") for i in range(1, len(filters))]
        self.out = keras.layers.Conv3D(1 + num_classes, (min(num_frames, 4), 4, 4),
                                       padding="valid", name=f"conv{len(filters) + 1}")

    def get_config(self):
        return {**super().get_config(), "num_frames": self.num_frames,
                "frame_size": self.frame_size, "num_classes": self.num_classes,
                "filters": self.filters, "leaky_relu_slope": self.leaky_relu_slope}

    def dummy_inputs(self, batch_size=1):
        return ops.zeros((batch_size, self.num_frames, self.frame_size, self.frame_size, 3))

    def call(self, video, training=False):
        x = ops.cast(video, self.compute_dtype)
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i:
                x = self.norms[i - 1](x, training=training)
            x = ops.leaky_relu(x, self.leaky_relu_slope)
        out = ops.cast(ops.mean(self.out(x), axis=(1, 2, 3)), "float32")   # (batch, 1 + K)
        return out[:, 0], out[:, 1:]
