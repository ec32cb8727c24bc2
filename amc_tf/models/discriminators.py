"""The appearance discriminator D_a (A.2, Figure B) and motion discriminator D_m (A.3, Figure C).

Both return logits (σ of the paper's fc(1) is applied inside the cross-entropy losses) and expose
the outputs of their first two per-frame layers, the j = 1, 2 layers of the perceptual ranking
(Eq. (1)-(3)).
"""

import keras
from keras import ops

from amc_tf.models.common import ConfigModel, batch_norm, fold_time, lrelu, tile_spatial, unfold_time
from amc_tf.models.convlstm import ConvLSTMCell


@keras.saving.register_keras_serializable(package="amc_tf")
class AppearanceDiscriminator(ConfigModel):
    """D_a(y_a, x_{t-1}, x_t, x_{t+1}): is each quadruplet of frames real given y_a?

    Call inputs: {"appearance": (batch, H, W, 3), "video": (batch, T, H, W, 3)}; returns
    {"logits": (batch, T-2) one per t = 2..T-1, "features": [layer1, layer2] each
    (batch, T, h_j, w_j, C_j)}.
    """

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        c = self.config
        k = c.d_kernel_size
        self.frame_convs = [keras.layers.Conv2D(f, k, strides=2, padding="same", name=f"frame_conv{i + 1}")
                            for i, f in enumerate(c.da_frame_filters)]
        self.frame_norms = [batch_norm(c, f"frame_bn{i + 1}") for i in range(len(c.da_frame_filters))]
        self.deconv = keras.layers.Conv2DTranspose(c.da_deconv_filters, 3, strides=1,
                                                   padding="same", name="deconv")
        self.deconv_norm = batch_norm(c, "deconv_bn")
        self.head_convs = [keras.layers.Conv2D(c.da_head_filters[0], k, strides=2, padding="same",
                                               name="head_conv1"),
                           keras.layers.Conv2D(c.da_head_filters[1], k, strides=4, padding="same",
                                               name="head_conv2")]
        self.head_norms = [batch_norm(c, "head_bn1"), batch_norm(c, "head_bn2")]
        self.flatten = keras.layers.Flatten()
        self.fc = keras.layers.Dense(c.da_fc_units, name="fc")
        self.fc_norm = batch_norm(c, "fc_bn")
        self.out = keras.layers.Dense(1, name="out")

    def dummy_inputs(self, batch_size=1):
        c = self.config
        return {"appearance": ops.zeros((batch_size, c.frame_size, c.frame_size, 3)),
                "video": ops.zeros((batch_size, c.num_frames, c.frame_size, c.frame_size, 3))}

    def encode_frames(self, video, training=False):
        """Per-frame conv2d(k,2) - BN - lrelu stack; the outputs of every layer, (batch, T, ...)."""
        x, batch_time = fold_time(ops.cast(video, self.compute_dtype))
        layers = []
        for conv, norm in zip(self.frame_convs, self.frame_norms):
            x = lrelu(norm(conv(x), training=training), self.config)
            layers.append(unfold_time(x, batch_time))
        return layers

    def score(self, appearance_code, frame_codes, training=False):
        """Logits for quadruplets (y_a, x_{t-1}, x_t, x_{t+1}), t = 2..T-1 -> (batch, T-2)."""
        c = self.config
        steps = frame_codes.shape[1] - 2
        quads = ops.concatenate([
            ops.repeat(appearance_code[:, None], steps, axis=1),
            frame_codes[:, :-2], frame_codes[:, 1:-1], frame_codes[:, 2:]], axis=-1)
        x, batch_time = fold_time(quads)
        x = lrelu(self.deconv_norm(self.deconv(x), training=training), c)
        for conv, norm in zip(self.head_convs, self.head_norms):
            x = lrelu(norm(conv(x), training=training), c)
        x = lrelu(self.fc_norm(self.fc(self.flatten(x)), training=training), c)
        logits = ops.cast(self.out(x)[:, 0], "float32")
        return ops.reshape(logits, (batch_time[0], batch_time[1]))

    def call(self, inputs, training=False):
        appearance = inputs["appearance"]
        if not self.config.use_appearance:
            appearance = ops.zeros_like(appearance)
        appearance_code = self.encode_frames(appearance[:, None], training=training)[-1][:, 0]
        layers = self.encode_frames(inputs["video"], training=training)
        return {"logits": self.score(appearance_code, layers[-1], training=training),
                "features": layers[:2]}


@keras.saving.register_keras_serializable(package="amc_tf")
class MotionDiscriminator(ConfigModel):
    """D_m(x, y_a, y^l_m): real/fake given the class, class and velocity heads.

    Call inputs: {"video": (batch, T, H, W, 3) whose frame 0 is y_a, "motion_class": (batch,)}.
    Returns {"logits": (batch,) class-conditional real/fake, "class_logits": (batch, c),
    "velocity": (batch, T-1, 2k) in [-1, 1], "features": [layer1, layer2] each
    (batch, T-1, h_j, w_j, C_j) for the T-1 frames after y_a}.
    """

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        c = self.config
        k = c.d_kernel_size
        self.frame_convs = [keras.layers.Conv2D(f, k, strides=2, padding="same", name=f"frame_conv{i + 1}")
                            for i, f in enumerate(c.dm_frame_filters)]
        # conv2d(64) - lrelu - conv2d(128) - BN - lrelu - conv2d(256) - BN - lrelu.
        self.frame_norms = [None] + [batch_norm(c, f"frame_bn{i + 1}")
                                     for i in range(1, len(c.dm_frame_filters))]
        self.cell = ConvLSTMCell(c.dm_lstm_filters, c.kernel_size, name="convlstm")
        # Shared conv2d(64,2) - BN - lrelu (dashed lines of Figure C).
        self.head_conv = keras.layers.Conv2D(c.dm_head_filters, k, strides=2, padding="same",
                                             name="head_conv")
        self.head_norm = batch_norm(c, "head_bn")
        self.flatten = keras.layers.Flatten()
        self.velocity_fc = keras.layers.Dense(c.velocity_dim, name="velocity_fc")
        self.class_fc1 = keras.layers.Dense(c.dm_fc_units, name="class_fc1")
        self.class_norm1 = batch_norm(c, "class_bn1")
        self.class_fc2 = keras.layers.Dense(c.num_classes, name="class_fc2")
        self.class_norm2 = batch_norm(c, "class_bn2") if c.dm_class_logit_norm else None
        self.rf_conv = keras.layers.Conv2D(c.dm_rf_filters, k, strides=4, padding="same",
                                           name="rf_conv")
        self.rf_norm = batch_norm(c, "rf_bn")
        self.rf_out = keras.layers.Dense(1, name="rf_out")

    def dummy_inputs(self, batch_size=1):
        c = self.config
        return {"video": ops.zeros((batch_size, c.num_frames, c.frame_size, c.frame_size, 3)),
                "motion_class": ops.zeros((batch_size,), dtype="int32")}

    def encode_frames(self, video, training=False):
        x, batch_time = fold_time(ops.cast(video, self.compute_dtype))
        layers = []
        for conv, norm in zip(self.frame_convs, self.frame_norms):
            x = conv(x)
            if norm is not None:
                x = norm(x, training=training)
            x = lrelu(x, self.config)
            layers.append(unfold_time(x, batch_time))
        return layers

    def score(self, codes, motion_class, training=False):
        """Heads on per-frame codes (batch, T, h, w, C) whose frame 0 encodes y_a."""
        c = self.config
        appearance_code = codes[:, 0]
        if not c.use_appearance:
            appearance_code = ops.zeros_like(appearance_code)
        states = [appearance_code, appearance_code]       # initialised from the encoded y_a
        outputs = []
        for t in range(1, codes.shape[1]):
            o, states = self.cell(codes[:, t], states)
            outputs.append(o)
        o, batch_time = fold_time(ops.stack(outputs, axis=1))
        shared = lrelu(self.head_norm(self.head_conv(o), training=training), c)
        velocity = ops.tanh(self.velocity_fc(self.flatten(shared)))      # tanh(fc(#points x 2))
        velocity = unfold_time(velocity, batch_time)
        last = unfold_time(shared, batch_time)[:, -1]                    # from h_{T-1}
        x = lrelu(self.class_norm1(self.class_fc1(self.flatten(last)), training=training), c)
        class_logits = self.class_fc2(x)
        if self.class_norm2 is not None:
            class_logits = lrelu(self.class_norm2(class_logits, training=training), c)
        one_hot = ops.one_hot(ops.cast(motion_class, "int32"), c.num_classes, dtype=last.dtype)
        if not c.use_motion:
            one_hot = ops.zeros_like(one_hot)
        x = ops.concatenate([last, tile_spatial(one_hot, last.shape[1])], axis=-1)
        x = lrelu(self.rf_norm(self.rf_conv(x), training=training), c)
        logits = self.rf_out(self.flatten(x))[:, 0]
        return {"logits": ops.cast(logits, "float32"),
                "class_logits": ops.cast(class_logits, "float32"),
                "velocity": ops.cast(velocity, "float32")}

    def call(self, inputs, training=False):
        layers = self.encode_frames(inputs["video"], training=training)
        out = self.score(layers[-1], inputs["motion_class"], training=training)
        out["features"] = [layer[:, 1:] for layer in layers[:2]]
        return out
