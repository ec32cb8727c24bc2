"""The two VAN streams' encoders and generators (Sec. 3.1, Tables 4-5, ../shared/PEERS.md).

    ContentEncoder   E_c: q(z_c | x, k), a frame and the class -> (mu, logvar) of z_c in R^C
    ContentGenerator G_c: [z_c, one-hot] -> content vector -> content map (8x8) -> frame, with
                     the motion fused into its layers at every scale (fusion.fuse)
    MotionEncoder    E_m: q(z_m | dx, k), a frame difference and the class -> (mu, logvar) in R^M
    MotionGenerator  G_m: the motion history (fc + ConvLSTM), the motion map (outer product of
                     the history with the content vector) and per-scale heads predicting the
                     separable kernels and the mask

Layers are named as in the tables; sizes follow the frame size (`levels` = log2(S / 8)).
"""

import math

import keras
from keras import ops

from amc_tf.models.common import Network, batch_norm
from amc_tf.models.convlstm import ConvLSTMCell
from amc_tf.models.twostreamvan.fusion import fuse

BASE_SIZE = 8


def levels_of(frame_size):
    levels = int(round(math.log2(frame_size / BASE_SIZE)))
    if frame_size != BASE_SIZE * 2 ** levels or levels < 1:
        raise ValueError(f"frame_size must be 8 * 2**levels (16, 32, 64, ...), got {frame_size}")
    return levels


def one_hot_of(motion_class, num_classes, dtype):
    return ops.one_hot(ops.cast(motion_class, "int32"), num_classes, dtype=dtype)


def reparameterize(mu, logvar, noise):
    """z = mu + exp(logvar / 2) * eps (the VAE's reparameterisation)."""
    return mu + ops.exp(0.5 * logvar) * ops.cast(noise, mu.dtype)


@keras.saving.register_keras_serializable(package="amc_tf.twostreamvan")
class ContentEncoder(Network):
    """E_c(x, k) -> (mu, logvar) of q(z_c | x, k) (Table 4, PEERS.md; no BN).

    conv2d k3 - ReLU per filter, strides (1, 2) per level down to 8x8, flatten, fc(fc_units) -
    ReLU; the sampler: [feature, one-hot] -> fc(content_dim) for mu and for logvar.

    Args:
        frame_size: S = 8 * 2**levels.
        num_classes: K, the length of the one-hot class vector.
        content_dim: C.
        filters: 2 * levels convolution widths (stride 1, 2 alternating).
        fc_units: the feature fc (32 ngf).

    Call inputs {"frame": (batch, S, S, 3) in [-1, 1], "motion_class": int (batch,)};
    returns (mu, logvar), each (batch, C).

    Example, the paper's MUG E_c:
        ContentEncoder(frame_size=64, num_classes=6, content_dim=512,
                       filters=(16, 16, 16, 32, 32, 16), fc_units=512)
    """

    def __init__(self, frame_size, num_classes, content_dim, filters, fc_units, **kwargs):
        super().__init__(**kwargs)
        levels = levels_of(frame_size)
        if len(filters) != 2 * levels:
            raise ValueError(f"{2 * levels} convolutions take {frame_size}x{frame_size} to 8x8")
        self.frame_size = frame_size
        self.num_classes = num_classes
        self.content_dim = content_dim
        self.filters = tuple(filters)
        self.fc_units = fc_units
        self.convs = [keras.layers.Conv2D(f, 3, strides=1 + i % 2, padding="same",
                                          activation="relu", name=f"conv{i + 1}")
                      for i, f in enumerate(filters)]
        self.flatten = keras.layers.Flatten()
        self.fc = keras.layers.Dense(fc_units, activation="relu", name="fc")
        self.mu = keras.layers.Dense(content_dim, name="mu")
        self.logvar = keras.layers.Dense(content_dim, name="logvar")

    def get_config(self):
        return {**super().get_config(), "frame_size": self.frame_size,
                "num_classes": self.num_classes, "content_dim": self.content_dim,
                "filters": self.filters, "fc_units": self.fc_units}

    def dummy_inputs(self, batch_size=1):
        return {"frame": ops.zeros((batch_size, self.frame_size, self.frame_size, 3)),
                "motion_class": ops.zeros((batch_size,), dtype="int32")}

    def call(self, inputs, training=False):
        x = ops.cast(inputs["frame"], self.compute_dtype)
        for conv in self.convs:
            x = conv(x)
        feature = self.fc(self.flatten(x))
        h = ops.concatenate([feature, one_hot_of(inputs["motion_class"], self.num_classes,
                                                 self.compute_dtype)], axis=-1)
        return ops.cast(self.mu(h), "float32"), ops.cast(self.logvar(h), "float32")


@keras.saving.register_keras_serializable(package="amc_tf.twostreamvan")
class ContentGenerator(Network):
    """G_c: [z_c, one-hot] -> fc(vector_units) - ReLU (the content vector, which the motion map
    also reads) -> fc(map_channels * 8 * 8) - ReLU (the content map) -> deconv k3 - ReLU with
    strides 2, 1, 2, 1, ..., 2 -> deconv(3, k3) - tanh: the frame (Table 4; no BN).

    The content layers h_c^s at the scales 8, 16, ..., S are the content map, the output of
    every stride-1 deconv and the frame itself (before its tanh); `decode` fuses the motion of each scale into its
    layer (Eq. 2) when given.

    Args:
        frame_size: S = 8 * 2**levels.
        num_classes: K.
        content_dim: C.
        vector_units: the content vector (32 ngf).
        map_channels: the content map's channels (ngf).
        filters: 2 * levels - 1 deconvolution widths.

    Call inputs {"content": z_c (batch, C), "motion_class": int (batch,)}; returns the frame
    (batch, S, S, 3) in [-1, 1] (no motion).

    Example, the paper's MUG G_c:
        ContentGenerator(frame_size=64, num_classes=6, content_dim=512, vector_units=512,
                         map_channels=16, filters=(128, 64, 32, 32, 16))
    """

    def __init__(self, frame_size, num_classes, content_dim, vector_units, map_channels,
                 filters, **kwargs):
        super().__init__(**kwargs)
        levels = levels_of(frame_size)
        if len(filters) != 2 * levels - 1:
            raise ValueError(f"{2 * levels - 1} deconvolutions take 8x8 to "
                             f"{frame_size}x{frame_size}")
        self.frame_size = frame_size
        self.num_classes = num_classes
        self.content_dim = content_dim
        self.vector_units = vector_units
        self.map_channels = map_channels
        self.filters = tuple(filters)
        self.vector_fc = keras.layers.Dense(vector_units, activation="relu", name="fc1")
        self.map_fc = keras.layers.Dense(BASE_SIZE * BASE_SIZE * map_channels,
                                         activation="relu", name="fc2")
        self.deconvs = [keras.layers.Conv2DTranspose(f, 3, strides=2 if i % 2 == 0 else 1,
                                                     padding="same", activation="relu",
                                                     name=f"deconv{i + 1}")
                        for i, f in enumerate(filters)]
        self.to_rgb = keras.layers.Conv2DTranspose(3, 3, padding="same",
                                                   name=f"deconv{len(filters) + 1}")

    def get_config(self):
        return {**super().get_config(), "frame_size": self.frame_size,
                "num_classes": self.num_classes, "content_dim": self.content_dim,
                "vector_units": self.vector_units, "map_channels": self.map_channels,
                "filters": self.filters}

    @property
    def levels(self):
        return levels_of(self.frame_size)

    def dummy_inputs(self, batch_size=1):
        return {"content": ops.zeros((batch_size, self.content_dim)),
                "motion_class": ops.zeros((batch_size,), dtype="int32")}

    def content_vector(self, content, motion_class):
        """The 32 ngf content vector of [z_c, one-hot] (read by G_c and the motion map)."""
        one_hot = one_hot_of(motion_class, self.num_classes, self.compute_dtype)
        return self.vector_fc(ops.concatenate([ops.cast(content, self.compute_dtype), one_hot],
                                              axis=-1))

    def decode(self, vector, fusion=None):
        """The frame from the content vector, fusing `fusion[s]` = (vertical, horizontal, mask)
        into the content layer of scale s when given. Returns (frame float32, [h_c^s before
        fusion], [h^_c^s after fusion]), finest scale last."""
        x = ops.reshape(self.map_fc(vector), (-1, BASE_SIZE, BASE_SIZE, self.map_channels))
        layers, fused = [], []

        def at_scale(h):
            layers.append(h)
            if fusion is not None:
                h = fuse(h, *fusion[len(fused)])
            fused.append(h)
            return h

        x = at_scale(x)
        for i, deconv in enumerate(self.deconvs):
            x = deconv(x)
            if i % 2 == 1:                      # after each stride-1 deconv: scales 16 .. S/2
                x = at_scale(x)
        # The last scale fuses on the frame before its tanh: an unconstrained kernel on the
        # tanh output itself would leave [-1, 1].
        frame = ops.tanh(at_scale(self.to_rgb(x)))
        return ops.cast(frame, "float32"), layers, fused

    def call(self, inputs, training=False):
        return self.decode(self.content_vector(inputs["content"], inputs["motion_class"]))[0]


@keras.saving.register_keras_serializable(package="amc_tf.twostreamvan")
class MotionEncoder(Network):
    """E_m(dx, k) -> (mu, logvar) of q(z_m | dx, k) on the frame difference dx = x_t - x_{t-1}
    (Table 5, PEERS.md).

    Per level two conv2d (k5, or k7 at the last level) - BN - ReLU then a 2x2 max-pool, down to
    8x8; flatten, fc(fc_units) - BN - ReLU; the sampler: [feature, one-hot] -> fc(motion_dim)
    for mu and for logvar.

    Args:
        frame_size: S = 8 * 2**levels.
        num_classes: K.
        motion_dim: M.
        filters: 2 * levels convolution widths.
        fc_units: the feature fc (512).
        sync_batchnorm: BN statistics over the global batch under tf.distribute.

    Call inputs {"difference": (batch, S, S, 3) in [-2, 2], "motion_class": int (batch,)};
    returns (mu, logvar), each (batch, M).

    Example, the paper's MUG E_m:
        MotionEncoder(frame_size=64, num_classes=6, motion_dim=64,
                      filters=(16, 16, 32, 32, 32, 16), fc_units=512, sync_batchnorm=False)
    """

    def __init__(self, frame_size, num_classes, motion_dim, filters, fc_units, sync_batchnorm,
                 **kwargs):
        super().__init__(**kwargs)
        levels = levels_of(frame_size)
        if len(filters) != 2 * levels:
            raise ValueError(f"{2 * levels} convolutions take {frame_size}x{frame_size} to 8x8")
        self.frame_size = frame_size
        self.num_classes = num_classes
        self.motion_dim = motion_dim
        self.filters = tuple(filters)
        self.fc_units = fc_units
        self.sync_batchnorm = sync_batchnorm
        norm = lambda name: batch_norm(sync_batchnorm, name)
        self.convs = [keras.layers.Conv2D(f, 7 if i >= 2 * levels - 2 else 5, padding="same",
                                          use_bias=False, name=f"conv{i + 1}")
                      for i, f in enumerate(filters)]
        self.norms = [norm(f"conv{i + 1}_bn") for i in range(len(filters))]
        self.pool = keras.layers.MaxPooling2D(2)
        self.flatten = keras.layers.Flatten()
        self.fc = keras.layers.Dense(fc_units, use_bias=False, name="fc")
        self.fc_norm = norm("fc_bn")
        self.mu = keras.layers.Dense(motion_dim, name="mu")
        self.logvar = keras.layers.Dense(motion_dim, name="logvar")

    def get_config(self):
        return {**super().get_config(), "frame_size": self.frame_size,
                "num_classes": self.num_classes, "motion_dim": self.motion_dim,
                "filters": self.filters, "fc_units": self.fc_units,
                "sync_batchnorm": self.sync_batchnorm}

    def dummy_inputs(self, batch_size=1):
        return {"difference": ops.zeros((batch_size, self.frame_size, self.frame_size, 3)),
                "motion_class": ops.zeros((batch_size,), dtype="int32")}

    def call(self, inputs, training=False):
        x = ops.cast(inputs["difference"], self.compute_dtype)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = ops.relu(norm(conv(x), training=training))
            if i % 2 == 1:
                x = self.pool(x)
        feature = ops.relu(self.fc_norm(self.fc(self.flatten(x)), training=training))
        h = ops.concatenate([feature, one_hot_of(inputs["motion_class"], self.num_classes,
                                                 self.compute_dtype)], axis=-1)
        return ops.cast(self.mu(h), "float32"), ops.cast(self.logvar(h), "float32")


@keras.saving.register_keras_serializable(package="amc_tf.twostreamvan")
class MotionGenerator(Network):
    """G_m: the motion history, the motion map and the per-scale motion (Table 5, Fig. 10).

    Motion history: [z_m, one-hot] -> fc(history_channels * 8 * 8) - ReLU -> one ConvLSTM step
    (3x3; the state starts at ones, as the authors' code): e_m. Motion map: e_m -> fc
    (state_units), its outer product with the content vector -> fc(map_channels * 8 * 8) - ReLU.
    Blocks per scale: deconv (k3 stride 1 at 8x8, k4 stride 2 after) - BN - ReLU - conv k3 -
    BN - ReLU, widths `filters`; the first `head_channels[s]` channels feed scale s's head:
    deconv(head_filters, k3) - BN - ReLU, then conv k3 to the vertical and the horizontal n-vectors
    and conv k3 - tanh to the mask, mapped to [0, 1] as (tanh + 1) / 2.

    Args:
        frame_size: S = 8 * 2**levels; the scales are 8, 16, ..., S.
        num_classes: K.
        motion_dim: M.
        content_units: length of G_c's content vector (32 ngf).
        history_channels: the ConvLSTM's state channels.
        state_units: e_m's fc before the outer product (64).
        map_channels: the motion map's channels (16).
        filters: one block width per scale.
        head_channels: channels of each block's output that feed its head.
        head_filters: the head's deconvolution width.
        kernel_size: n, the length of the separable kernels.
        sync_batchnorm: BN statistics over the global batch under tf.distribute.

    Call inputs {"motion": z_m (batch, M), "motion_class": int (batch,), "content_vector":
    (batch, content_units)}: one step from the initial state; returns [(vertical, horizontal,
    mask)] per scale, (batch, s, s, n), (batch, s, s, n), (batch, s, s, 1).

    Example, the paper's MUG G_m:
        MotionGenerator(frame_size=64, num_classes=6, motion_dim=64, content_units=512,
                        history_channels=16, state_units=64, map_channels=16,
                        filters=(128, 64, 32, 16), head_channels=(32, 22, 16, 16),
                        head_filters=16, kernel_size=5, sync_batchnorm=False)
    """

    def __init__(self, frame_size, num_classes, motion_dim, content_units, history_channels,
                 state_units, map_channels, filters, head_channels, head_filters, kernel_size,
                 sync_batchnorm, **kwargs):
        super().__init__(**kwargs)
        levels = levels_of(frame_size)
        if len(filters) != levels + 1 or len(head_channels) != levels + 1:
            raise ValueError(f"one block and head per scale ({levels + 1})")
        self.frame_size = frame_size
        self.num_classes = num_classes
        self.motion_dim = motion_dim
        self.content_units = content_units
        self.history_channels = history_channels
        self.state_units = state_units
        self.map_channels = map_channels
        self.filters = tuple(filters)
        self.head_channels = tuple(head_channels)
        self.head_filters = head_filters
        self.kernel_size = kernel_size
        self.sync_batchnorm = sync_batchnorm
        norm = lambda name: batch_norm(sync_batchnorm, name)
        side = BASE_SIZE * BASE_SIZE
        self.history_fc = keras.layers.Dense(side * history_channels, activation="relu",
                                             name="history_fc")
        self.history = ConvLSTMCell(history_channels, 3, name="history_convlstm")
        self.state_fc = keras.layers.Dense(state_units, name="state_fc")
        self.map_fc = keras.layers.Dense(side * map_channels, activation="relu", name="map_fc")
        self.block_deconvs, self.block_convs, self.deconv_norms, self.conv_norms = [], [], [], []
        self.head_deconvs, self.head_norms = [], []
        self.head_vertical, self.head_horizontal, self.head_mask = [], [], []
        for s, f in enumerate(filters):
            self.block_deconvs.append(keras.layers.Conv2DTranspose(
                f, 3 if s == 0 else 4, strides=1 if s == 0 else 2, padding="same",
                use_bias=False, name=f"block{s + 1}_deconv"))
            self.block_convs.append(keras.layers.Conv2D(f, 3, padding="same", use_bias=False,
                                                        name=f"block{s + 1}_conv"))
            self.deconv_norms.append(norm(f"block{s + 1}_deconv_bn"))
            self.conv_norms.append(norm(f"block{s + 1}_conv_bn"))
            self.head_deconvs.append(keras.layers.Conv2DTranspose(
                head_filters, 3, padding="same", use_bias=False, name=f"head{s + 1}_deconv"))
            self.head_norms.append(norm(f"head{s + 1}_bn"))
            self.head_vertical.append(keras.layers.Conv2D(kernel_size, 3, padding="same",
                                                          name=f"head{s + 1}_vertical"))
            self.head_horizontal.append(keras.layers.Conv2D(kernel_size, 3, padding="same",
                                                            name=f"head{s + 1}_horizontal"))
            self.head_mask.append(keras.layers.Conv2D(1, 3, padding="same",
                                                      name=f"head{s + 1}_mask"))

    def get_config(self):
        return {**super().get_config(), "frame_size": self.frame_size,
                "num_classes": self.num_classes, "motion_dim": self.motion_dim,
                "content_units": self.content_units, "history_channels": self.history_channels,
                "state_units": self.state_units, "map_channels": self.map_channels,
                "filters": self.filters, "head_channels": self.head_channels,
                "head_filters": self.head_filters, "kernel_size": self.kernel_size,
                "sync_batchnorm": self.sync_batchnorm}

    def dummy_inputs(self, batch_size=1):
        return {"motion": ops.zeros((batch_size, self.motion_dim)),
                "motion_class": ops.zeros((batch_size,), dtype="int32"),
                "content_vector": ops.zeros((batch_size, self.content_units))}

    def initial_state(self, batch_size):
        """The ConvLSTM's (h, c) at the start of a video: ones (the authors' code)."""
        shape = (batch_size, BASE_SIZE, BASE_SIZE, self.history_channels)
        return [ops.ones(shape, self.compute_dtype), ops.ones(shape, self.compute_dtype)]

    def history_step(self, motion, one_hot, state):
        """e_m of this step: the history updated with z_m (and the class). Returns (e_m, state)."""
        x = self.history_fc(ops.concatenate([ops.cast(motion, self.compute_dtype), one_hot],
                                            axis=-1))
        x = ops.reshape(x, (-1, BASE_SIZE, BASE_SIZE, self.history_channels))
        return self.history(x, state)

    def motion(self, history, content_vector, training=False):
        """[(vertical, horizontal, mask)] at every scale from e_m and the content vector."""
        e = self.state_fc(ops.reshape(history, (-1, BASE_SIZE * BASE_SIZE *
                                                self.history_channels)))
        outer = e[:, :, None] * ops.cast(content_vector, self.compute_dtype)[:, None, :]
        x = self.map_fc(ops.reshape(outer, (-1, self.state_units * self.content_units)))
        x = ops.reshape(x, (-1, BASE_SIZE, BASE_SIZE, self.map_channels))
        out = []
        for s in range(len(self.filters)):
            x = ops.relu(self.deconv_norms[s](self.block_deconvs[s](x), training=training))
            x = ops.relu(self.conv_norms[s](self.block_convs[s](x), training=training))
            h = x[..., :self.head_channels[s]]
            h = ops.relu(self.head_norms[s](self.head_deconvs[s](h), training=training))
            out.append((self.head_vertical[s](h), self.head_horizontal[s](h),
                        0.5 * (ops.tanh(self.head_mask[s](h)) + 1.0)))
        return out

    def call(self, inputs, training=False):
        one_hot = one_hot_of(inputs["motion_class"], self.num_classes, self.compute_dtype)
        state = self.initial_state(ops.shape(one_hot)[0])
        history, _ = self.history_step(inputs["motion"], one_hot, state)
        return self.motion(history, inputs["content_vector"], training=training)
