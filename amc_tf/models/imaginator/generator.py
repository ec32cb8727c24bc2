"""ImaGINator's generator G (appendix A.1, Figure 1, Table 1): an image encoder with skip maps
and a video decoder of transposed (1+2)D convolutions with spatio-temporal fusion."""

import keras
from keras import ops

from amc_tf.models.common import Network, batch_norm

GENERATOR_INPUTS = ("appearance", "motion_class", "noise")


def generator_inputs(conditions):
    """G's inputs from a conditions dict (the family contract's; velocities are not used)."""
    return {k: conditions[k] for k in GENERATOR_INPUTS}


def class_map(one_hot, frames, size):
    """The one-hot category vector (batch, c) replicated to a map (batch, T, size, size, c)."""
    return ops.broadcast_to(one_hot[:, None, None, None, :],
                            (ops.shape(one_hot)[0], frames, size, size, one_hot.shape[-1]))


def repeat_over_time(image, frames):
    """An encoder map (batch, h, w, C) repeated over T: (batch, T, h, w, C)."""
    return ops.repeat(image[:, None], frames, axis=1)


@keras.saving.register_keras_serializable(package="amc_tf.imaginator")
class Generator(Network):
    """x̂ = G(y_a, c, z): the whole T-frame video from an image, a class and noise.

    Encoder: conv2d(k, stride 2, "same") - BN - lrelu per level (skip maps h1..hL), then Conv5,
    conv2d(latent_dim, k, valid) on the 4x4 map: h5 (1x1), no BN, no activation (the authors'
    code). Decoder input: [z, one-hot, h5] as a 1x1x1 volume. Block 1: temporal ConvT
    (first_temporal_kernel, 1, 1) valid - BN - lrelu - spatial ConvT (1, k, k) valid - BN -
    lrelu: first_temporal_kernel x 4 x 4. Blocks 2..L: temporal ConvT (4, 1, 1) stride (2, 1, 1)
    - BN - lrelu - spatial ConvT (1, k, k) stride (1, 2, 2) - BN - lrelu, each fed the previous
    block's output fused with the encoder skip map of the same size (repeated over T) and the
    one-hot map. to_rgb: the same pair (temporal to rgb_temporal_filters, BN, lrelu; spatial to
    3, tanh) on the last fused map.

    Args:
        num_frames: T = first_temporal_kernel * 2**L.
        frame_size: H = W = 4 * 2**L, L = len(encoder_filters).
        num_classes: c, the length of the one-hot category vector.
        noise_dim: the size of z.
        encoder_filters: filters of the L stride-2 encoder convolutions (skip maps h1..hL).
        latent_dim: filters of Conv5, the image's latent vector h5.
        block_filters: filters of the L blocks' spatial ConvTs (block outputs).
        temporal_filters: filters of the L blocks' temporal ConvTs.
        rgb_temporal_filters: filters of to_rgb's temporal ConvT.
        kernel_size: spatial kernel of every (transposed) convolution.
        leaky_relu_slope: negative slope of the leaky ReLUs.
        sync_batchnorm: BN statistics over the global batch under tf.distribute.

    Inputs (a dict): appearance float32 (batch, H, W, 3) in [-1, 1]; motion_class int32
    (batch,); noise float32 (batch, noise_dim). Output float32 (batch, T, H, W, 3) in [-1, 1];
    with `return_blocks=True` a dict {"video", "skips": [h1..hL], "latent": h5, "blocks":
    [block 1..L outputs before fusion]}.

    Example, the paper's MUG generator (Table 1):
        Generator(num_frames=32, frame_size=64, num_classes=6, noise_dim=512,
                  encoder_filters=(64, 128, 256, 512), latent_dim=100,
                  block_filters=(512, 256, 128, 64), temporal_filters=(4096, 3072, 1536, 768),
                  rgb_temporal_filters=36, kernel_size=4, leaky_relu_slope=0.2,
                  sync_batchnorm=True)
    """

    def __init__(self, num_frames, frame_size, num_classes, noise_dim, encoder_filters,
                 latent_dim, block_filters, temporal_filters, rgb_temporal_filters, kernel_size,
                 leaky_relu_slope, sync_batchnorm, **kwargs):
        super().__init__(**kwargs)
        levels = len(encoder_filters)
        if len(block_filters) != levels or len(temporal_filters) != levels:
            raise ValueError("one encoder convolution, decoder block and temporal ConvT per "
                             "resolution level")
        if frame_size != 4 * 2 ** levels or num_frames % 2 ** levels:
            raise ValueError(f"{levels} levels take frames of {4 * 2 ** levels}x"
                             f"{4 * 2 ** levels} and a multiple of {2 ** levels} frames")
        self.num_frames = num_frames
        self.frame_size = frame_size
        self.num_classes = num_classes
        self.noise_dim = noise_dim
        self.encoder_filters = tuple(encoder_filters)
        self.latent_dim = latent_dim
        self.block_filters = tuple(block_filters)
        self.temporal_filters = tuple(temporal_filters)
        self.rgb_temporal_filters = rgb_temporal_filters
        self.kernel_size = kernel_size
        self.leaky_relu_slope = leaky_relu_slope
        self.sync_batchnorm = sync_batchnorm
        k = kernel_size
        norm = lambda name: batch_norm(sync_batchnorm, name)
        # Conv1-4 (bias-free: BN follows) and Conv5.
        self.encoder_convs = [keras.layers.Conv2D(f, k, strides=2, padding="same",
                                                  use_bias=False, name=f"conv{i + 1}")
                              for i, f in enumerate(encoder_filters)]
        self.encoder_norms = [norm(f"conv{i + 1}_bn") for i in range(levels)]
        self.latent_conv = keras.layers.Conv2D(latent_dim, k, padding="valid",
                                               name=f"conv{levels + 1}")
        # Deconv(6..)-1 temporal, Deconv(6..)-2 spatial; block 1 grows the 1x1x1 volume.
        kt = self.first_temporal_kernel
        self.temporal_convs, self.spatial_convs, self.temporal_norms, self.spatial_norms = \
            [], [], [], []
        for i, (ft, fs) in enumerate(zip(temporal_filters, block_filters)):
            first = i == 0
            self.temporal_convs.append(keras.layers.Conv3DTranspose(
                ft, (kt if first else 4, 1, 1), strides=(1 if first else 2, 1, 1),
                padding="valid" if first else "same", use_bias=False,
                name=f"deconv{i + 6}_1"))
            self.spatial_convs.append(keras.layers.Conv3DTranspose(
                fs, (1, k, k), strides=(1, 1, 1) if first else (1, 2, 2),
                padding="valid" if first else "same", use_bias=False,
                name=f"deconv{i + 6}_2"))
            self.temporal_norms.append(norm(f"deconv{i + 6}_1_bn"))
            self.spatial_norms.append(norm(f"deconv{i + 6}_2_bn"))
        # to_rgb (Deconv10-1, Deconv10-2 at the paper's sizes).
        self.rgb_temporal_conv = keras.layers.Conv3DTranspose(
            rgb_temporal_filters, (4, 1, 1), strides=(2, 1, 1), padding="same", use_bias=False,
            name=f"deconv{levels + 6}_1")
        self.rgb_temporal_norm = norm(f"deconv{levels + 6}_1_bn")
        self.rgb_spatial_conv = keras.layers.Conv3DTranspose(
            3, (1, k, k), strides=(1, 2, 2), padding="same", name=f"deconv{levels + 6}_2")

    def get_config(self):
        return {**super().get_config(), "num_frames": self.num_frames,
                "frame_size": self.frame_size, "num_classes": self.num_classes,
                "noise_dim": self.noise_dim, "encoder_filters": self.encoder_filters,
                "latent_dim": self.latent_dim, "block_filters": self.block_filters,
                "temporal_filters": self.temporal_filters,
                "rgb_temporal_filters": self.rgb_temporal_filters,
                "kernel_size": self.kernel_size, "leaky_relu_slope": self.leaky_relu_slope,
                "sync_batchnorm": self.sync_batchnorm}

    @property
    def levels(self):
        return len(self.encoder_filters)

    @property
    def first_temporal_kernel(self):
        """Block 1's temporal kernel: T / 2**L frames (Deconv6-1's 2 at T=32, 64x64)."""
        return self.num_frames // 2 ** self.levels

    def dummy_inputs(self, batch_size=1):
        return {
            "appearance": ops.zeros((batch_size, self.frame_size, self.frame_size, 3)),
            "motion_class": ops.zeros((batch_size,), dtype="int32"),
            "noise": ops.zeros((batch_size, self.noise_dim)),
        }

    def lrelu(self, x):
        return ops.leaky_relu(x, self.leaky_relu_slope)

    def encode(self, appearance, training=False):
        """The skip maps [h1 .. hL] (finest first) and h5, the latent (batch, 1, 1, latent)."""
        x = appearance
        skips = []
        for conv, norm in zip(self.encoder_convs, self.encoder_norms):
            x = self.lrelu(norm(conv(x), training=training))
            skips.append(x)
        return skips, self.latent_conv(x)

    def call(self, inputs, training=False, return_blocks=False):
        appearance = ops.cast(inputs["appearance"], self.compute_dtype)
        noise = ops.cast(inputs["noise"], self.compute_dtype)
        one_hot = ops.one_hot(ops.cast(inputs["motion_class"], "int32"), self.num_classes,
                              dtype=self.compute_dtype)
        skips, latent = self.encode(appearance, training=training)
        # [z, one-hot, h5] as a 1x1x1 volume.
        x = ops.concatenate([noise, one_hot, ops.reshape(latent, (-1, self.latent_dim))],
                            axis=-1)[:, None, None, None, :]
        blocks = []
        for i in range(self.levels):
            x = self.lrelu(self.temporal_norms[i](self.temporal_convs[i](x), training=training))
            x = self.lrelu(self.spatial_norms[i](self.spatial_convs[i](x), training=training))
            blocks.append(x)
            # Spatio-temporal fusion: the skip map of this size (h4 after block 1 ... h1 after
            # block L) repeated over T, and the one-hot map.
            frames, size = x.shape[1], x.shape[2]
            x = ops.concatenate([x, repeat_over_time(skips[-1 - i], frames),
                                 class_map(one_hot, frames, size)], axis=-1)
        x = self.lrelu(self.rgb_temporal_norm(self.rgb_temporal_conv(x), training=training))
        video = ops.cast(ops.tanh(self.rgb_spatial_conv(x)), "float32")
        if return_blocks:
            return {"video": video, "skips": skips, "latent": latent, "blocks": blocks}
        return video


def build_generator(config, **kwargs):
    """G of an ImaginatorConfig; kwargs go to keras.Model (name, ...)."""
    return Generator(
        num_frames=config.num_frames, frame_size=config.frame_size,
        num_classes=config.num_classes, noise_dim=config.noise_dim,
        encoder_filters=config.g_encoder_filters, latent_dim=config.g_latent_dim,
        block_filters=config.g_block_filters, temporal_filters=config.g_temporal_filters,
        rgb_temporal_filters=config.g_rgb_temporal_filters, kernel_size=config.kernel_size,
        leaky_relu_slope=config.leaky_relu_slope, sync_batchnorm=config.sync_batchnorm, **kwargs)
