"""Spectrally normalised convolutions (Miyato et al., "Spectral normalization for generative
adversarial networks", ICLR 2018), shared by the families: ImaGINator's discriminators (A.2),
G3AN's generator (SN transposed convolutions, F-SA's projections) and discriminators.

W_SN = W / σ(W), σ(W) the largest singular value of the kernel as a matrix with one row per
output channel (here its transpose: the kernel reshaped to (-1, filters)), estimated by power
iteration with a persistent vector u: per training call

    v = W^T u / ||W^T u||,   u = W v / ||W v||,   σ = u^T W v

with u and v constants of the gradient and σ differentiated through W (Miyato et al.'s
Algorithm 1). Keras's `keras.layers.SpectralNormalization` differs: it overwrites the wrapped
layer's kernel with W / σ in place, so σ is not part of the gradient (the gradient is the one of
an unnormalised layer) and the trained variable is the normalised kernel.

Under tf.distribute every replica computes the same u from the same W and u; u is a
non-trainable variable aggregated "only_first_replica", so its update inside a replica context
is legal and keeps the replicas in step.

Serialized names: the layers are registered under the package "amc_tf" and, for the two that
existed before G3AN, also under their first package "amc_tf.imaginator", so `.keras` files saved
then still load.
"""

import keras
from keras import ops


def _l2_normalize(x, epsilon):
    return x / ops.maximum(ops.sqrt(ops.sum(ops.square(x))), epsilon)


def power_iteration(matrix, u, iterations, epsilon=1e-12):
    """`iterations` steps of power iteration on `matrix` (K, N) = W^T from u (1, N).

    Returns (u, v): u (1, N) estimates W's first left singular vector, v (1, K) its right one;
    both without gradient.
    """
    matrix = ops.stop_gradient(matrix)
    u = _l2_normalize(ops.stop_gradient(u), epsilon)
    v = None
    for _ in range(iterations):
        v = _l2_normalize(ops.matmul(u, ops.transpose(matrix)), epsilon)   # W^T u
        u = _l2_normalize(ops.matmul(v, matrix), epsilon)                  # W v
    return u, v


def spectral_norm(matrix, u, v):
    """σ = u^T W v for `matrix` = W^T (K, N), u (1, N), v (1, K): differentiable in W."""
    return ops.sum(ops.matmul(v, matrix) * u)


class SpectralConv(keras.layers.Layer):
    """A convolution whose kernel is divided by its spectral norm (module doc).

    Args:
        filters: output channels.
        kernel_size: int or one int per spatial axis.
        strides: int or one int per spatial axis.
        padding: "valid" or "same".
        use_bias: add a bias after the convolution.
        power_iterations: power-iteration steps per training call (Miyato et al.: 1).
        epsilon: floor of the norms in the power iteration.

    Input (batch, *spatial, channels); output (batch, *spatial', filters). Training calls
    (training=True) advance u; inference calls use the stored u.
    """

    rank = None

    def __init__(self, filters, kernel_size, strides=1, padding="valid", use_bias=True,
                 power_iterations=1, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        as_tuple = lambda x: (int(x),) * self.rank if isinstance(x, int) else tuple(x)
        self.filters = int(filters)
        self.kernel_size = as_tuple(kernel_size)
        self.strides = as_tuple(strides)
        self.padding = padding
        self.use_bias = use_bias
        self.power_iterations = int(power_iterations)
        self.epsilon = float(epsilon)

    def kernel_shape(self, channels):
        """The kernel's shape for `channels` input channels (ops.conv's layout)."""
        return self.kernel_size + (channels, self.filters)

    def kernel_matrix(self, kernel):
        """W^T: the kernel as a (-1, filters) matrix, one column per output channel."""
        return ops.reshape(kernel, (-1, self.filters))

    def build(self, input_shape):
        channels = input_shape[-1]
        # The normalisation runs in float32 (autocast off); the kernel is cast afterwards.
        self.kernel = self.add_weight(name="kernel", shape=self.kernel_shape(channels),
                                      initializer="glorot_uniform", autocast=False)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") \
            if self.use_bias else None
        self.u = self.add_weight(name="u", shape=(1, self.filters),
                                 initializer=keras.initializers.RandomNormal(stddev=1.0),
                                 trainable=False, autocast=False,
                                 aggregation="only_first_replica")

    def normalized_kernel(self, training=False):
        """W / σ(W), float32; a training call first advances u by the power iteration."""
        kernel = ops.convert_to_tensor(self.kernel)
        matrix = self.kernel_matrix(kernel)
        if training:
            u, v = power_iteration(matrix, self.u, self.power_iterations, self.epsilon)
            self.u.assign(u)
        else:
            u = _l2_normalize(ops.convert_to_tensor(self.u), self.epsilon)
            v = ops.stop_gradient(
                _l2_normalize(ops.matmul(u, ops.transpose(matrix)), self.epsilon))
        return kernel / spectral_norm(matrix, u, v)

    def convolve(self, inputs, kernel):
        return ops.conv(inputs, kernel, strides=self.strides, padding=self.padding)

    def call(self, inputs, training=False):
        kernel = ops.cast(self.normalized_kernel(training=bool(training)), inputs.dtype)
        x = self.convolve(inputs, kernel)
        if self.bias is not None:
            x = x + ops.cast(self.bias, x.dtype)
        return x

    def compute_output_shape(self, input_shape):
        spatial = []
        for size, k, s in zip(input_shape[1:-1], self.kernel_size, self.strides):
            if size is None:
                spatial.append(None)
            elif self.padding == "same":
                spatial.append(-(-size // s))
            else:
                spatial.append((size - k) // s + 1)
        return (input_shape[0], *spatial, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "use_bias": self.use_bias,
                "power_iterations": self.power_iterations, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="amc_tf")
@keras.saving.register_keras_serializable(package="amc_tf.imaginator")   # first name (module doc)
class SpectralConv2D(SpectralConv):
    """Spectrally normalised 2D convolution, (batch, H, W, C) -> (batch, H', W', filters).

    Example, the image discriminator's Conv1 (Table 2):
        SpectralConv2D(64, 4, strides=2, padding="same")
    """

    rank = 2


@keras.saving.register_keras_serializable(package="amc_tf")
@keras.saving.register_keras_serializable(package="amc_tf.imaginator")   # first name (module doc)
class SpectralConv3D(SpectralConv):
    """Spectrally normalised 3D convolution, (batch, T, H, W, C) -> (batch, T', H', W',
    filters).

    Example, the video discriminator's Conv5 (Table 3):
        SpectralConv3D(1, (2, 4, 4), padding="valid")
    """

    rank = 3


@keras.saving.register_keras_serializable(package="amc_tf")
class SpectralConv3DTranspose(SpectralConv):
    """Spectrally normalised transposed 3D convolution, (batch, T, H, W, C) -> (batch, T', H',
    W', filters): T' = (T - 1) * s + k with "valid" padding (PyTorch's padding 0), T * s with
    "same" (PyTorch's k4 s2 p1). σ is taken of the kernel with one column per output channel
    (PyTorch's spectral_norm of a ConvTranspose normalises along its output channels too).

    Example, G3AN's block-2 spatial convolution (PEERS.md: k4 s2 p1 over H, W):
        SpectralConv3DTranspose(512, (1, 4, 4), strides=(1, 2, 2), padding="same")
    """

    rank = 3

    def kernel_shape(self, channels):
        return self.kernel_size + (self.filters, channels)     # ops.conv_transpose's layout

    def kernel_matrix(self, kernel):
        return ops.reshape(ops.swapaxes(kernel, -1, -2), (-1, self.filters))

    def convolve(self, inputs, kernel):
        return ops.conv_transpose(inputs, kernel, strides=self.strides, padding=self.padding)

    def compute_output_shape(self, input_shape):
        spatial = []
        for size, k, s in zip(input_shape[1:-1], self.kernel_size, self.strides):
            if size is None:
                spatial.append(None)
            elif self.padding == "same":
                spatial.append(size * s)
            else:
                spatial.append((size - 1) * s + k)
        return (input_shape[0], *spatial, self.filters)
