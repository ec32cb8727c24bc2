"""The spectrally normalised image discriminator D_I that ImaGINator (Table 2) and G3AN (PEERS.md:
"as ImaGINator's") share: one frame in, one logit out."""

import keras
from keras import ops

from amc_tf.models.common import Network
from amc_tf.models.spectral_norm import SpectralConv2D


@keras.saving.register_keras_serializable(package="amc_tf")
class ImageDiscriminator(Network):
    """D_I(x_t): is the frame real? No class input (ImaGINator's Table 2, also G3AN's, PEERS.md).

    conv2d(f, k, stride 2, "same") - lrelu per filter, down to 4 x 4, then conv2d(1, k) valid:
    one logit per frame.

    Args:
        frame_size: H = W = 4 * 2**L, L = len(filters).
        filters: filters of the L stride-2 convolutions.
        kernel_size: kernel of every convolution.
        leaky_relu_slope: negative slope of the leaky ReLUs.
        power_iterations: spectral normalisation's power iterations per training call.

    Input: frames (batch, H, W, 3) in [-1, 1]; returns logits float32 (batch,).

    Example, the paper's D_I (Table 2):
        ImageDiscriminator(frame_size=64, filters=(64, 128, 256, 512), kernel_size=4,
                           leaky_relu_slope=0.2, power_iterations=1)
    """

    def __init__(self, frame_size, filters, kernel_size, leaky_relu_slope, power_iterations,
                 **kwargs):
        super().__init__(**kwargs)
        if frame_size != 4 * 2 ** len(filters):
            raise ValueError(f"{len(filters)} stride-2 convolutions take frames of "
                             f"{4 * 2 ** len(filters)}x{4 * 2 ** len(filters)}")
        self.frame_size = frame_size
        self.filters = tuple(filters)
        self.kernel_size = kernel_size
        self.leaky_relu_slope = leaky_relu_slope
        self.power_iterations = power_iterations
        k = kernel_size
        self.convs = [SpectralConv2D(f, k, strides=2, padding="same",
                                     power_iterations=power_iterations, name=f"conv{i + 1}")
                      for i, f in enumerate(filters)]
        self.out = SpectralConv2D(1, k, padding="valid", power_iterations=power_iterations,
                                  name=f"conv{len(filters) + 1}")

    def get_config(self):
        return {**super().get_config(), "frame_size": self.frame_size, "filters": self.filters,
                "kernel_size": self.kernel_size, "leaky_relu_slope": self.leaky_relu_slope,
                "power_iterations": self.power_iterations}

    def dummy_inputs(self, batch_size=1):
        return ops.zeros((batch_size, self.frame_size, self.frame_size, 3))

    def call(self, frames, training=False):
        x = ops.cast(frames, self.compute_dtype)
        for conv in self.convs:
            x = ops.leaky_relu(conv(x, training=training), self.leaky_relu_slope)
        return ops.cast(ops.reshape(self.out(x, training=training), (-1,)), "float32")


def build_image_discriminator(config, **kwargs):
    """D_I of a config with frame_size, di_filters, kernel_size, leaky_relu_slope and
    power_iterations (ImaGINator's, G3AN's); kwargs go to keras.Model (name, ...)."""
    return ImageDiscriminator(
        frame_size=config.frame_size, filters=config.di_filters,
        kernel_size=config.kernel_size, leaky_relu_slope=config.leaky_relu_slope,
        power_iterations=config.power_iterations, **kwargs)
