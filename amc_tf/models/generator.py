"""The generator G (appendix A.1, Figure A)."""

import keras
from keras import ops

from amc_tf.models.common import (ConfigModel, batch_norm, fold_time, lrelu, tile_spatial,
                                  unfold_time)
from amc_tf.models.convlstm import ConvLSTMCell


def motion_condition(motion_class, velocity, num_classes):
    """y_m = [y^l_m repeated T-1 times, y^v_m] in R^{(T-1) x q} (§3.1)."""
    steps = velocity.shape[1]
    one_hot = ops.one_hot(ops.cast(motion_class, "int32"), num_classes, dtype=velocity.dtype)
    labels = ops.repeat(one_hot[:, None, :], steps, axis=1)
    return ops.concatenate([labels, velocity], axis=-1)


@keras.saving.register_keras_serializable(package="amc_tf")
class Generator(ConfigModel):
    """x̂|y = G(z | y_a, y_m): the T-1 frames after the appearance condition.

    Inputs (a dict): appearance float32 (batch, H, W, 3) in [-1, 1]; motion_class int32 (batch,);
    velocity float32 (batch, T-1, 2k); noise float32 (batch, p). Output float32
    (batch, T-1, H, W, 3) in [-1, 1].
    """

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        c = self.config
        k = c.kernel_size
        conv = lambda f, name: keras.layers.Conv2D(f, k, padding="same", name=name)
        # Encoder: conv2d(32) - lrelu - [conv2d - BN - lrelu - pool] x3 - conv2d - BN - lrelu.
        self.encoder_convs = [conv(f, f"enc_conv{i + 1}") for i, f in enumerate(c.g_encoder_filters)]
        self.encoder_norms = [batch_norm(c, f"enc_bn{i + 2}") for i in range(4)]
        self.pool = keras.layers.AveragePooling2D(2, 2)
        # Gated fully-connected layer on y_m,t: g * fc(q) + (1 - g) * q.
        self.motion_fc = keras.layers.Dense(c.motion_dim, name="motion_fc")
        self.motion_gate = keras.layers.Dense(1, name="motion_gate")
        self.cell = ConvLSTMCell(c.g_lstm_filters, k, name="convlstm")
        # Decoder: [conv2d - BN - lrelu - upsample - gating] x3 - conv2d - BN - lrelu - conv2d(3).
        self.decoder_convs = [conv(f, f"dec_conv{i + 1}") for i, f in enumerate(c.g_decoder_filters)]
        self.decoder_norms = [batch_norm(c, f"dec_bn{i + 1}") for i in range(4)]
        self.output_conv = conv(3, "dec_out")
        self.upsample = keras.layers.UpSampling2D(2, interpolation="bilinear")
        # Conv11-13: upsample(2^i) - conv2d - lrelu - sigmoid on the convLSTM output.
        self.gate_upsample = [keras.layers.UpSampling2D(2 ** (i + 1), interpolation="bilinear")
                              for i in range(3)]
        self.gate_convs = [conv(f, f"conv1{i + 1}") for i, f in enumerate(c.g_decoder_filters[:3])]

    def dummy_inputs(self, batch_size=1):
        c = self.config
        return {
            "appearance": ops.zeros((batch_size, c.frame_size, c.frame_size, 3)),
            "motion_class": ops.zeros((batch_size,), dtype="int32"),
            "velocity": ops.zeros((batch_size, c.num_frames - 1, c.velocity_dim)),
            "noise": ops.zeros((batch_size, c.noise_dim)),
        }

    def encode(self, appearance, training=False):
        """φ(y_a) (batch, H/8, W/8, C) and the skip tensors [Conv4, Conv3, Conv2] outputs."""
        c = self.config
        x = lrelu(self.encoder_convs[0](appearance), c)
        skips = []
        for i in range(1, 5):
            x = lrelu(self.encoder_norms[i - 1](self.encoder_convs[i](x), training=training), c)
            if i < 4:
                skips.append(x)
                x = self.pool(x)
        return x, skips[::-1]

    def skip_concat(self, h, phi, noise):
        """[h_t, φ(y_a), tiled z] channel-wise -> (batch * (T-1), 8, 8, 512 + p) (A.1).

        h: convLSTM outputs folded over time (batch * (T-1), 8, 8, 256); phi (batch, 8, 8, 256);
        noise (batch, p).
        """
        steps = self.config.num_frames - 1
        per_step = lambda x: ops.repeat(x, steps, axis=0)
        return ops.concatenate(
            [h, per_step(phi), per_step(tile_spatial(noise, self.config.latent_size))], axis=-1)

    def call(self, inputs, training=False):
        c = self.config
        appearance = ops.cast(inputs["appearance"], self.compute_dtype)
        velocity = ops.cast(inputs["velocity"], self.compute_dtype)
        noise = ops.cast(inputs["noise"], self.compute_dtype)
        if not c.use_appearance:                       # Table 4, "No y_a"
            appearance = ops.zeros_like(appearance)
        y_m = motion_condition(inputs["motion_class"], velocity, c.num_classes)
        if not c.use_motion:                           # Table 4, "No y_m"
            y_m = ops.zeros_like(y_m)

        phi, skips = self.encode(appearance, training=training)        # 8 x 8 x 256
        gate = ops.sigmoid(self.motion_gate(y_m))                       # (B, T-1, 1)
        y_m = gate * self.motion_fc(y_m) + (1.0 - gate) * y_m          # gated fc (A.1)

        # Unroll the convLSTM T-1 times from states initialised with φ(y_a).
        states = [phi, phi]
        outputs = []
        for t in range(c.num_frames - 1):
            h, states = self.cell(tile_spatial(y_m[:, t], c.latent_size), states)
            outputs.append(h)
        h = ops.stack(outputs, axis=1)                                   # (B, T-1, 8, 8, 256)

        # Decode all time steps as one batch.
        h, batch_time = fold_time(h)
        steps = c.num_frames - 1
        per_step = lambda x: ops.repeat(x, steps, axis=0)
        x = self.skip_concat(h, phi, noise)
        for i in range(3):
            x = lrelu(self.decoder_norms[i](self.decoder_convs[i](x), training=training), c)
            u = self.upsample(x)
            s = ops.sigmoid(lrelu(self.gate_convs[i](self.gate_upsample[i](h)), c))  # Conv1{1,2,3}
            x = s * u + (1.0 - s) * per_step(skips[i])              # element-wise gating
        x = lrelu(self.decoder_norms[3](self.decoder_convs[3](x), training=training), c)
        x = ops.tanh(self.output_conv(x))
        return ops.cast(unfold_time(x, batch_time), "float32")
