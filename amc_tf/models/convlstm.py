"""The convolutional LSTM cell (Shi et al., 2015) shared by the generator (A.1) and D_m (A.3)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="amc_tf")
class ConvLSTMCell(keras.layers.Layer):
    """One step of a ConvLSTM: gates from a convolution over [x_t, h_{t-1}].

    The cell knows nothing of sequences; callers drive it with a loop over time.

    Args:
        filters: channels of the hidden and cell states.
        kernel_size: square kernel of the gate convolution (stride 1, same padding).

    Call: `h_t, [h_t, c_t] = cell(x_t, [h_{t-1}, c_{t-1}])` with x_t (batch, height, width,
    channels) and states (batch, height, width, filters).
    """

    def __init__(self, filters, kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size

    @property
    def state_size(self):
        return [self.filters, self.filters]

    def build(self, input_shape):
        in_channels = input_shape[-1] + self.filters
        self.kernel = self.add_weight(
            name="kernel", shape=(self.kernel_size, self.kernel_size, in_channels,
                                  4 * self.filters),
            initializer="glorot_uniform")
        # Forget-gate bias 1 (Jozefowicz et al., 2015), others 0.
        self.bias = self.add_weight(
            name="bias", shape=(4 * self.filters,),
            initializer=keras.initializers.Constant(
                [0.0] * self.filters + [1.0] * self.filters + [0.0] * 2 * self.filters))

    def step_weights(self, steps):
        """(kernel, bias) for each of `steps` calls (`call(..., step_weights=w[t])`), read once
        and passed on as a chain of identities, step t + 1's from step t's. The backward then
        adds each step's weight gradient to a running sum as it undoes the steps; with one read
        shared by all steps it kept every step's gradient (18 MiB each for paper-natops' G) for
        one sum at the end. Same values and gradients."""
        kernel, bias = ops.convert_to_tensor(self.kernel), ops.convert_to_tensor(self.bias)
        chain = []
        for _ in range(steps):
            kernel, bias = ops.copy(kernel), ops.copy(bias)
            chain.append((kernel, bias))
        return chain

    def call(self, inputs, states, step_weights=None):
        h_prev, c_prev = states
        kernel, bias = (self.kernel, self.bias) if step_weights is None else step_weights
        z = ops.conv(ops.concatenate([inputs, h_prev], axis=-1), kernel, strides=1,
                     padding="same") + bias
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c_prev + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size}
