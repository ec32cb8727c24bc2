"""ImaGINator's video discriminator D_V (A.2, Table 3, Figure 3); its image discriminator D_I
(Table 2, Figure 2) is amc_tf/models/image_discriminator.py, shared with G3AN.

Every convolution of both is spectrally normalised (A.2: "In all layers in both Discriminators,
we use the Spectral Normalization"), there is no BN, a leaky ReLU follows every convolution but
the last, and they return logits (the paper's final sigmoid sits in the cross-entropy).
"""

import keras
from keras import ops

from amc_tf.models.common import Network
from amc_tf.models.imaginator.generator import class_map
from amc_tf.models.spectral_norm import SpectralConv3D


@keras.saving.register_keras_serializable(package="amc_tf.imaginator")
class VideoDiscriminator(Network):
    """D_V(x, c): is the video x real, given its class?

    conv3d(filters[0], k, stride 2, "same") - lrelu, then the one-hot category map concatenated
    (A.2: "replicated into a one-hot category map of the same spatial size of the output feature
    map of Conv1"), then conv3d(f, k, stride 2) - lrelu for the other filters, down to
    (T / 2**L) x 4 x 4, and conv3d(1, (T / 2**L, k, k)) valid: one logit (Conv5's (2, 4, 4) at
    T=32, 64x64).

    Args:
        num_frames: T.
        frame_size: H = W = 4 * 2**L, L = len(filters).
        num_classes: c, the length of the one-hot category vector.
        filters: filters of the L stride-2 convolutions.
        kernel_size: kernel of the stride-2 convolutions (each axis) and Conv5's spatial axes.
        leaky_relu_slope: negative slope of the leaky ReLUs.
        power_iterations: spectral normalisation's power iterations per training call.

    Call inputs: {"video": (batch, T, H, W, 3) in [-1, 1], "motion_class": int (batch,)};
    returns logits float32 (batch,).

    Example, the paper's MUG D_V (Table 3):
        VideoDiscriminator(num_frames=32, frame_size=64, num_classes=6,
                           filters=(64, 128, 256, 512), kernel_size=4, leaky_relu_slope=0.2,
                           power_iterations=1)
    """

    def __init__(self, num_frames, frame_size, num_classes, filters, kernel_size,
                 leaky_relu_slope, power_iterations, **kwargs):
        super().__init__(**kwargs)
        levels = len(filters)
        if frame_size != 4 * 2 ** levels or num_frames % 2 ** levels:
            raise ValueError(f"{len(filters)} stride-2 convolutions take frames of "
                             f"{4 * 2 ** levels}x{4 * 2 ** levels} and a multiple of "
                             f"{2 ** levels} frames")
        self.num_frames = num_frames
        self.frame_size = frame_size
        self.num_classes = num_classes
        self.filters = tuple(filters)
        self.kernel_size = kernel_size
        self.leaky_relu_slope = leaky_relu_slope
        self.power_iterations = power_iterations
        k = kernel_size
        self.convs = [SpectralConv3D(f, k, strides=2, padding="same",
                                     power_iterations=power_iterations, name=f"conv{i + 1}")
                      for i, f in enumerate(filters)]
        self.out = SpectralConv3D(1, (num_frames // 2 ** levels, k, k), padding="valid",
                                  power_iterations=power_iterations, name=f"conv{levels + 1}")

    def get_config(self):
        return {**super().get_config(), "num_frames": self.num_frames,
                "frame_size": self.frame_size, "num_classes": self.num_classes,
                "filters": self.filters, "kernel_size": self.kernel_size,
                "leaky_relu_slope": self.leaky_relu_slope,
                "power_iterations": self.power_iterations}

    def dummy_inputs(self, batch_size=1):
        return {"video": ops.zeros((batch_size, self.num_frames, self.frame_size,
                                    self.frame_size, 3)),
                "motion_class": ops.zeros((batch_size,), dtype="int32")}

    def call(self, inputs, training=False):
        x = ops.cast(inputs["video"], self.compute_dtype)
        one_hot = ops.one_hot(ops.cast(inputs["motion_class"], "int32"), self.num_classes,
                              dtype=self.compute_dtype)
        for i, conv in enumerate(self.convs):
            x = ops.leaky_relu(conv(x, training=training), self.leaky_relu_slope)
            if i == 0:           # Conv2 takes [Conv1's map, the one-hot category map]
                x = ops.concatenate([x, class_map(one_hot, x.shape[1], x.shape[2])], axis=-1)
        return ops.cast(ops.reshape(self.out(x, training=training), (-1,)), "float32")


def build_video_discriminator(config, **kwargs):
    """D_V of an ImaginatorConfig; kwargs go to keras.Model (name, ...)."""
    return VideoDiscriminator(
        num_frames=config.num_frames, frame_size=config.frame_size,
        num_classes=config.num_classes, filters=config.dv_filters,
        kernel_size=config.kernel_size, leaky_relu_slope=config.leaky_relu_slope,
        power_iterations=config.power_iterations, **kwargs)
