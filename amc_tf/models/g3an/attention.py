"""Factorized spatio-temporal Self-Attention, F-SA (G3AN supplementary B, Eqs. 1-4): temporal
self-attention (T-SA, along T at each spatial position) followed by spatial self-attention (S-SA,
over the H x W positions at each time step).

The paper's attention, not the released code's: PEERS.md notes that the authors' code reshapes
where it should transpose, which mixes positions and times; here the attended axis is moved next
to the channels before the attention is taken.
"""

import keras
from keras import ops

from amc_tf.models.spectral_norm import SpectralConv3D

AXES = ("time", "space")


@keras.saving.register_keras_serializable(package="amc_tf.g3an")
class SelfAttention(keras.layers.Layer):
    """One factor of F-SA: self-attention along time (T-SA, Eqs. 1-2) or over space (S-SA,
    Eqs. 3-4) of a video feature map x.

        a_ji = softmax_i(f(x_i)^T g(x_j)),   y_j = γ Σ_i a_ji h(x_i) + x_j

    i, j run over the T time steps of one position (time) or the H x W positions of one time
    step (space). f (key) and g (query) are spectrally normalised 1x1x1 convolutions to
    C / reduction channels, h (value) one to C; γ is a learned scalar that starts at 0, so the
    layer starts as the identity.

    Args:
        axis: "time" or "space", the attended axis.
        reduction: k of C' = C / k for f and g (the paper's 8).
        power_iterations: spectral normalisation's power iterations per training call.

    Input and output (batch, T, H, W, C); `attention(x)` returns the weights a, (batch * H * W,
    T, T) for time and (batch * T, H * W, H * W) for space, rows j summing to 1 over i.
    """

    def __init__(self, axis, reduction=8, power_iterations=1, **kwargs):
        super().__init__(**kwargs)
        if axis not in AXES:
            raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
        self.axis = axis
        self.reduction = int(reduction)
        self.power_iterations = int(power_iterations)

    def build(self, input_shape):
        channels = input_shape[-1]
        reduced = max(1, channels // self.reduction)
        sn = dict(kernel_size=1, power_iterations=self.power_iterations)
        self.f = SpectralConv3D(reduced, name="f", **sn)         # key
        self.g = SpectralConv3D(reduced, name="g", **sn)         # query
        self.h = SpectralConv3D(channels, name="h", **sn)        # value
        for conv in (self.f, self.g, self.h):
            conv.build(input_shape)
        self.gamma = self.add_weight(name="gamma", shape=(), initializer="zeros")

    def _sequences(self, x):
        """(batch, T, H, W, c) -> the attended sequences: (batch * H * W, T, c) for time,
        (batch * T, H * W, c) for space."""
        _, t, h, w, c = x.shape
        if self.axis == "time":
            return ops.reshape(ops.transpose(x, (0, 2, 3, 1, 4)), (-1, t, c))
        return ops.reshape(x, (-1, h * w, c))

    def _video(self, sequences, shape):
        """The inverse of `_sequences` for a map of `shape` (batch, T, H, W, C)."""
        _, t, h, w, c = shape
        if self.axis == "time":
            return ops.transpose(ops.reshape(sequences, (-1, h, w, t, c)), (0, 3, 1, 2, 4))
        return ops.reshape(sequences, (-1, t, h, w, c))

    def _weights(self, x, training):
        key = self._sequences(self.f(x, training=training))
        query = self._sequences(self.g(x, training=training))
        # t_ij = f(x_i)^T g(x_j), rows j, softmax over i (Eqs. 1, 3); float32 for the softmax.
        scores = ops.matmul(query, ops.transpose(key, (0, 2, 1)))
        return ops.cast(ops.softmax(ops.cast(scores, "float32"), axis=-1), x.dtype)

    def attention(self, x, training=False):
        """The attention weights a (class doc)."""
        return self._weights(ops.cast(x, self.compute_dtype), training)

    def call(self, x, training=False):
        weights = self._weights(x, training)
        value = self._sequences(self.h(x, training=training))
        attended = self._video(ops.matmul(weights, value), x.shape)       # Σ_i a_ji h(x_i)
        return ops.cast(self.gamma, x.dtype) * attended + x               # Eqs. 2, 4

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "reduction": self.reduction,
                "power_iterations": self.power_iterations}


@keras.saving.register_keras_serializable(package="amc_tf.g3an")
class FactorizedSelfAttention(keras.layers.Layer):
    """F-SA (supplementary B, Figure 1a): T-SA, then S-SA on its output.

    Args:
        reduction: k of C' = C / k for the query and key projections (the paper's 8).
        power_iterations: spectral normalisation's power iterations per training call.

    Input and output (batch, T, H, W, C).

    Example, the paper's F-SA on G_V after the fourth G3 block (256 x 16 x 32 x 32):
        FactorizedSelfAttention(reduction=8, power_iterations=1)
    """

    def __init__(self, reduction=8, power_iterations=1, **kwargs):
        super().__init__(**kwargs)
        self.reduction = int(reduction)
        self.power_iterations = int(power_iterations)
        self.temporal = SelfAttention("time", reduction, power_iterations, name="temporal")
        self.spatial = SelfAttention("space", reduction, power_iterations, name="spatial")

    def build(self, input_shape):
        self.temporal.build(input_shape)
        self.spatial.build(input_shape)

    def call(self, x, training=False):
        return self.spatial(self.temporal(x, training=training), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction,
                "power_iterations": self.power_iterations}
