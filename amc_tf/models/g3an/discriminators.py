"""G3AN's discriminators (PEERS.md): the (2+1)D video discriminator D_V; the image
discriminator D_I is ImaGINator's (amc_tf/models/image_discriminator.py). Every convolution is spectrally normalised, a leaky ReLU
follows every convolution but the last, there is no BN, and they return logits (the final
sigmoid sits in the cross-entropy)."""

import keras
from keras import ops

from amc_tf.models.common import Network
from amc_tf.models.spectral_norm import SpectralConv3D


def class_map(one_hot, frames, size):
    """The one-hot (batch, c) replicated to a map (batch, T, size, size, c)."""
    return ops.broadcast_to(one_hot[:, None, None, None, :],
                            (ops.shape(one_hot)[0], frames, size, size, one_hot.shape[-1]))


@keras.saving.register_keras_serializable(package="amc_tf.g3an")
class VideoDiscriminator(Network):
    """D_V(x[, c]): is the video x real (given its class)?

    (2+1)D stages, one per filter count: spatial conv (1, k, k) stride (1, 2, 2) "same" - lrelu,
    temporal conv (kt, 1, 1) stride 1 "valid" - lrelu (paper: T 16 -> 13 -> 10 -> 7 -> 4, H 64 ->
    4). Then conv (1, h, h) valid to the same width - lrelu and conv (t, 1, 1) valid to one logit,
    h and t the remaining size and frames. Class-conditional (num_classes > 0, our design as
    ImaGINator's D_V): the one-hot category map joins the output of the first layer (the first
    spatial conv), the input of the first temporal conv.

    Args:
        num_frames: T.
        frame_size: H = W, divisible by 2**len(filters).
        num_classes: c; 0: unconditional.
        filters: the stages' widths.
        temporal_kernels: the stages' temporal kernels kt.
        kernel_size: k of the spatial convolutions.
        leaky_relu_slope: negative slope of the leaky ReLUs.
        power_iterations: spectral normalisation's power iterations per training call.

    Call inputs: {"video": (batch, T, H, W, 3) in [-1, 1], "motion_class": int (batch,)};
    returns logits float32 (batch,).

    Example, the paper's D_V (PEERS.md):
        VideoDiscriminator(num_frames=16, frame_size=64, num_classes=6,
                           filters=(64, 128, 256, 512), temporal_kernels=(4, 4, 4, 4),
                           kernel_size=4, leaky_relu_slope=0.2, power_iterations=1)
    """

    def __init__(self, num_frames, frame_size, num_classes, filters, temporal_kernels,
                 kernel_size, leaky_relu_slope, power_iterations, **kwargs):
        super().__init__(**kwargs)
        stages = len(filters)
        if len(temporal_kernels) != stages:
            raise ValueError("one temporal kernel per stage")
        if frame_size % 2 ** stages:
            raise ValueError(f"{stages} stride-2 stages need frames divisible by {2 ** stages}")
        frames = num_frames - sum(k - 1 for k in temporal_kernels)
        if frames < 1:
            raise ValueError(f"temporal kernels {tuple(temporal_kernels)} leave no frame of "
                             f"{num_frames}")
        self.num_frames = num_frames
        self.frame_size = frame_size
        self.num_classes = num_classes
        self.filters = tuple(filters)
        self.temporal_kernels = tuple(temporal_kernels)
        self.kernel_size = kernel_size
        self.leaky_relu_slope = leaky_relu_slope
        self.power_iterations = power_iterations
        k, sn = kernel_size, dict(power_iterations=power_iterations)
        self.spatial_convs = [SpectralConv3D(f, (1, k, k), strides=(1, 2, 2), padding="same",
                                             name=f"conv{i + 1}_spatial", **sn)
                              for i, f in enumerate(filters)]
        self.temporal_convs = [SpectralConv3D(f, (kt, 1, 1), padding="valid",
                                              name=f"conv{i + 1}_temporal", **sn)
                               for i, (f, kt) in enumerate(zip(filters, temporal_kernels))]
        size = frame_size // 2 ** stages
        self.out_spatial = SpectralConv3D(filters[-1], (1, size, size), padding="valid",
                                          name=f"conv{stages + 1}_spatial", **sn)
        self.out_temporal = SpectralConv3D(1, (frames, 1, 1), padding="valid",
                                           name=f"conv{stages + 1}_temporal", **sn)

    def get_config(self):
        return {**super().get_config(), "num_frames": self.num_frames,
                "frame_size": self.frame_size, "num_classes": self.num_classes,
                "filters": self.filters, "temporal_kernels": self.temporal_kernels,
                "kernel_size": self.kernel_size, "leaky_relu_slope": self.leaky_relu_slope,
                "power_iterations": self.power_iterations}

    def dummy_inputs(self, batch_size=1):
        return {"video": ops.zeros((batch_size, self.num_frames, self.frame_size,
                                    self.frame_size, 3)),
                "motion_class": ops.zeros((batch_size,), dtype="int32")}

    def lrelu(self, x):
        return ops.leaky_relu(x, self.leaky_relu_slope)

    def call(self, inputs, training=False, return_stages=False):
        x = ops.cast(inputs["video"], self.compute_dtype)
        stages = []
        for i, (spatial, temporal) in enumerate(zip(self.spatial_convs, self.temporal_convs)):
            x = self.lrelu(spatial(x, training=training))
            if i == 0 and self.num_classes:     # the class map joins the first layer's output
                one_hot = ops.one_hot(ops.cast(inputs["motion_class"], "int32"),
                                      self.num_classes, dtype=self.compute_dtype)
                x = ops.concatenate([x, class_map(one_hot, x.shape[1], x.shape[2])], axis=-1)
            x = self.lrelu(temporal(x, training=training))
            stages.append(x)
        x = self.lrelu(self.out_spatial(x, training=training))
        logits = ops.cast(ops.reshape(self.out_temporal(x, training=training), (-1,)),
                          "float32")
        return (logits, stages) if return_stages else logits


def build_video_discriminator(config, **kwargs):
    """D_V of a G3anConfig; kwargs go to keras.Model (name, ...)."""
    return VideoDiscriminator(
        num_frames=config.num_frames, frame_size=config.frame_size,
        num_classes=config.num_classes if config.conditional else 0,
        filters=config.dv_filters, temporal_kernels=config.dv_temporal_kernels,
        kernel_size=config.kernel_size, leaky_relu_slope=config.leaky_relu_slope,
        power_iterations=config.power_iterations, **kwargs)
