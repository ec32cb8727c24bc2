"""G3AN's generator (supplementary A, Figure 2, Table 1; PEERS.md): three streams, video G_V,
appearance G_S and motion G_T, through five G3 blocks with F-SA on G_V after the fourth, then
to_rgb."""

import keras
from keras import ops

from amc_tf.models.common import Network, batch_norm
from amc_tf.models.g3an.attention import FactorizedSelfAttention
from amc_tf.models.spectral_norm import SpectralConv3DTranspose

GENERATOR_INPUTS = ("motion_class", "noise")


def generator_inputs(conditions):
    """G's inputs from a conditions dict (the family contract's; no appearance, no
    velocities)."""
    return {k: conditions[k] for k in GENERATOR_INPUTS}


def _padding(stride):
    """PEERS.md's table: stride 1 with padding 0, stride 2 with k4 p1."""
    return "valid" if stride == 1 else "same"


@keras.saving.register_keras_serializable(package="amc_tf.g3an")
class G3Block(keras.layers.Layer):
    """One G3 module: the three streams' SN transposed convolutions, each followed by BN and
    ReLU, and their fusion.

        G_V: temporal (kt, 1, 1) stride (st, 1, 1), then spatial (1, ks, ks) stride (1, ss, ss)
        G_S: spatial (1, ks, ks) stride (1, ss, ss)         (appearance: one time step)
        G_T: temporal (kt, 1, 1) stride (st, 1, 1)          (motion: one pixel)
        fusion: h_v = h_v + h_t (over H x W), then h_v = [h_s repeated over T, h_v]

    Args:
        filters: each stream's output channels (h_v has twice as many after the fusion).
        spatial_kernel, spatial_stride: ks, ss (stride 1: padding 0; 2: padding 1).
        temporal_kernel, temporal_stride: kt, st (the same rule).
        sync_batchnorm: BN statistics over the global batch under tf.distribute.
        power_iterations: spectral normalisation's power iterations per training call.

    Call inputs (h_v (batch, T, H, W, Cv), h_s (batch, 1, H, W, Cs), h_t (batch, T, 1, 1, Ct));
    returns the three streams after the block, h_v with 2 * filters channels.
    """

    def __init__(self, filters, spatial_kernel, spatial_stride, temporal_kernel,
                 temporal_stride, sync_batchnorm, power_iterations, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.spatial_kernel = int(spatial_kernel)
        self.spatial_stride = int(spatial_stride)
        self.temporal_kernel = int(temporal_kernel)
        self.temporal_stride = int(temporal_stride)
        self.sync_batchnorm = sync_batchnorm
        self.power_iterations = int(power_iterations)
        ks, ss, kt, st = spatial_kernel, spatial_stride, temporal_kernel, temporal_stride

        def conv(spatial, name):
            kernel, strides, padding = ((1, ks, ks), (1, ss, ss), _padding(ss)) if spatial \
                else ((kt, 1, 1), (st, 1, 1), _padding(st))
            return SpectralConv3DTranspose(filters, kernel, strides=strides, padding=padding,
                                           use_bias=False, power_iterations=power_iterations,
                                           name=name)
        self.video_temporal = conv(False, "video_temporal")
        self.video_spatial = conv(True, "video_spatial")
        self.appearance_spatial = conv(True, "appearance_spatial")
        self.motion_temporal = conv(False, "motion_temporal")
        self.video_temporal_bn = batch_norm(sync_batchnorm, "video_temporal_bn")
        self.video_spatial_bn = batch_norm(sync_batchnorm, "video_spatial_bn")
        self.appearance_spatial_bn = batch_norm(sync_batchnorm, "appearance_spatial_bn")
        self.motion_temporal_bn = batch_norm(sync_batchnorm, "motion_temporal_bn")

    def build(self, input_shape):
        # Sublayers build on the first call (the Network builds by calling on zeros).
        self.built = True

    def _conv_bn_relu(self, name, x, training):
        conv, norm = getattr(self, name), getattr(self, f"{name}_bn")
        return ops.relu(norm(conv(x, training=training), training=training))

    def call(self, streams, training=False):
        h_v, h_s, h_t = streams
        h_v = self._conv_bn_relu("video_temporal", h_v, training)
        h_v = self._conv_bn_relu("video_spatial", h_v, training)
        h_s = self._conv_bn_relu("appearance_spatial", h_s, training)
        h_t = self._conv_bn_relu("motion_temporal", h_t, training)
        h_v = h_v + h_t                                        # motion over every position
        h_v = ops.concatenate([ops.repeat(h_s, h_v.shape[1], axis=1), h_v], axis=-1)
        return h_v, h_s, h_t

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "spatial_kernel": self.spatial_kernel, "spatial_stride": self.spatial_stride,
                "temporal_kernel": self.temporal_kernel,
                "temporal_stride": self.temporal_stride, "sync_batchnorm": self.sync_batchnorm,
                "power_iterations": self.power_iterations}


@keras.saving.register_keras_serializable(package="amc_tf.g3an")
class Generator(Network):
    """x̂ = G(z_a, z_m, c): a video from appearance noise, motion noise and (conditional) a class.

    Streams' inputs: G_V [z_a repeated over the T_m steps, z_m] (batch, T_m, 1, 1, za + zm),
    G_S z_a (batch, 1, 1, 1, za), G_T z_m (batch, T_m, 1, 1, zm), with the class one-hot
    (repeated over T_m) joining G_T's input when `num_classes` > 0 (our class-conditional
    design, docs/g3an.md). Then the G3 blocks, F-SA on h_v after block `fsa_after_block`
    (0: none), and to_rgb: conv3d (1, k, k) "same" to 3 channels, tanh.

    Args:
        num_classes: c, the one-hot's length; 0: unconditional (the released model).
        appearance_noise_dim: the size of z_a.
        motion_noise_dim: the size of one z_m step.
        filters: the G3 blocks' stream widths.
        spatial_kernels, spatial_strides, temporal_kernels, temporal_strides: the blocks'
            kernels and strides (G3Block; stride 1: padding 0, stride 2: padding 1).
        fsa_after_block: the block (1-based) after which F-SA runs on h_v; 0 for none.
        fsa_reduction: k of F-SA's C / k query and key channels.
        rgb_kernel_size: to_rgb's spatial kernel.
        sync_batchnorm: BN statistics over the global batch under tf.distribute.
        power_iterations: spectral normalisation's power iterations per training call.

    Inputs (a dict): noise float32 (batch, za + T_m * zm) = [z_a, z_m step-major]; motion_class
    int32 (batch,) (ignored when unconditional). Output float32 (batch, T, H, W, 3) in [-1, 1],
    T and H set by the blocks from T_m (paper: 16 + 4 (T_m - 1) frames of 64x64); with
    `return_blocks=True` a dict {"video", "blocks": [h_v after each block], "fsa": h_v after
    F-SA (or None)}.

    Example, the paper's generator (PEERS.md's table, about 23 M parameters):
        Generator(num_classes=6, appearance_noise_dim=128, motion_noise_dim=10,
                  filters=(512, 512, 256, 128, 64), spatial_kernels=(4, 4, 4, 4, 4),
                  spatial_strides=(1, 2, 2, 2, 2), temporal_kernels=(4, 4, 4, 1, 1),
                  temporal_strides=(1, 2, 2, 1, 1), fsa_after_block=4, fsa_reduction=8,
                  rgb_kernel_size=3, sync_batchnorm=True, power_iterations=1)
    """

    def __init__(self, num_classes, appearance_noise_dim, motion_noise_dim, filters,
                 spatial_kernels, spatial_strides, temporal_kernels, temporal_strides,
                 fsa_after_block, fsa_reduction, rgb_kernel_size, sync_batchnorm,
                 power_iterations, **kwargs):
        super().__init__(**kwargs)
        n = len(filters)
        if not all(len(t) == n for t in (spatial_kernels, spatial_strides, temporal_kernels,
                                          temporal_strides)):
            raise ValueError("one filter count, kernel and stride per G3 block")
        if not 0 <= fsa_after_block <= n:
            raise ValueError(f"fsa_after_block must be in [0, {n}], got {fsa_after_block}")
        self.num_classes = int(num_classes)
        self.appearance_noise_dim = int(appearance_noise_dim)
        self.motion_noise_dim = int(motion_noise_dim)
        self.filters = tuple(filters)
        self.spatial_kernels = tuple(spatial_kernels)
        self.spatial_strides = tuple(spatial_strides)
        self.temporal_kernels = tuple(temporal_kernels)
        self.temporal_strides = tuple(temporal_strides)
        self.fsa_after_block = int(fsa_after_block)
        self.fsa_reduction = int(fsa_reduction)
        self.rgb_kernel_size = int(rgb_kernel_size)
        self.sync_batchnorm = sync_batchnorm
        self.power_iterations = int(power_iterations)
        self.blocks = [G3Block(f, ks, ss, kt, st, sync_batchnorm, power_iterations,
                               name=f"g3_{i}")                     # G^3_0 .. G^3_4 (Table 1)
                       for i, (f, ks, ss, kt, st) in enumerate(zip(
                           filters, spatial_kernels, spatial_strides, temporal_kernels,
                           temporal_strides))]
        self.fsa = FactorizedSelfAttention(fsa_reduction, power_iterations, name="fsa") \
            if fsa_after_block else None
        k = rgb_kernel_size
        self.to_rgb = keras.layers.Conv3D(3, (1, k, k), padding="same", name="to_rgb")

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "appearance_noise_dim": self.appearance_noise_dim,
                "motion_noise_dim": self.motion_noise_dim, "filters": self.filters,
                "spatial_kernels": self.spatial_kernels, "spatial_strides": self.spatial_strides,
                "temporal_kernels": self.temporal_kernels,
                "temporal_strides": self.temporal_strides,
                "fsa_after_block": self.fsa_after_block, "fsa_reduction": self.fsa_reduction,
                "rgb_kernel_size": self.rgb_kernel_size, "sync_batchnorm": self.sync_batchnorm,
                "power_iterations": self.power_iterations}

    def dummy_inputs(self, batch_size=1):
        return {"noise": ops.zeros((batch_size,
                                    self.appearance_noise_dim + self.motion_noise_dim)),
                "motion_class": ops.zeros((batch_size,), dtype="int32")}

    def streams(self, noise, motion_class):
        """The three streams' inputs (h_v, h_s, h_t) from the flat z and the class."""
        za = self.appearance_noise_dim
        z_a = noise[:, :za]
        z_m = ops.reshape(noise[:, za:], (-1, (noise.shape[-1] - za) // self.motion_noise_dim,
                                          1, 1, self.motion_noise_dim))      # (B, T_m, 1, 1, zm)
        steps = z_m.shape[1]
        h_s = z_a[:, None, None, None, :]
        h_v = ops.concatenate([ops.repeat(h_s, steps, axis=1), z_m], axis=-1)
        h_t = z_m
        if self.num_classes:
            one_hot = ops.one_hot(ops.cast(motion_class, "int32"), self.num_classes,
                                  dtype=noise.dtype)
            h_t = ops.concatenate(
                [z_m, ops.repeat(one_hot[:, None, None, None, :], steps, axis=1)], axis=-1)
        return h_v, h_s, h_t

    def call(self, inputs, training=False, return_blocks=False):
        noise = ops.cast(inputs["noise"], self.compute_dtype)
        if (noise.shape[-1] - self.appearance_noise_dim) % self.motion_noise_dim:
            raise ValueError(f"noise is [z_a ({self.appearance_noise_dim}), z_m (steps x "
                             f"{self.motion_noise_dim})]; got {noise.shape[-1]} values")
        streams = self.streams(noise, inputs["motion_class"])
        blocks, attended = [], None
        for i, block in enumerate(self.blocks):
            streams = block(streams, training=training)
            blocks.append(streams[0])
            if i + 1 == self.fsa_after_block:                     # F-SA after G^3_3 (paper)
                attended = self.fsa(streams[0], training=training)
                streams = (attended,) + tuple(streams[1:])
        video = ops.cast(ops.tanh(self.to_rgb(streams[0])), "float32")
        if return_blocks:
            return {"video": video, "blocks": blocks, "fsa": attended}
        return video


def build_generator(config, **kwargs):
    """G of a G3anConfig; kwargs go to keras.Model (name, ...)."""
    return Generator(
        num_classes=config.num_classes if config.conditional else 0,
        appearance_noise_dim=config.appearance_noise_dim,
        motion_noise_dim=config.motion_noise_dim, filters=config.g_filters,
        spatial_kernels=config.g_spatial_kernels, spatial_strides=config.g_spatial_strides,
        temporal_kernels=config.g_temporal_kernels, temporal_strides=config.g_temporal_strides,
        fsa_after_block=config.fsa_after_block if config.use_fsa else 0,
        fsa_reduction=config.fsa_reduction, rgb_kernel_size=config.rgb_kernel_size,
        sync_batchnorm=config.sync_batchnorm, power_iterations=config.power_iterations,
        **kwargs)
