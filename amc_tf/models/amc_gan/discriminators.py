"""The appearance discriminator D_a (A.2, Figure B) and motion discriminator D_m (A.3, Figure C).

Both return logits (σ of the paper's fc(1) is applied inside the cross-entropy losses) and expose
the outputs of their first two per-frame layers, the j = 1, 2 layers of the perceptual ranking
(Eq. (1)-(3)).
"""

import keras
from keras import ops

from amc_tf.models.common import (Network, batch_norm, check_space_to_depth, fold_time,
                                   leaky_relu, space_to_depth, tile_spatial, unfold_time)
from amc_tf.models.convlstm import ConvLSTMCell


@keras.saving.register_keras_serializable(package="amc_tf")
class AppearanceDiscriminator(Network):
    """D_a(y_a, x_{t-1}, x_t, x_{t+1}): is each quadruplet of frames real given y_a?

    Args:
        num_frames: T of the videos it judges (y_a plus T-1 frames).
        frame_size: H = W.
        frame_filters: filters of the per-frame conv2d(k, 2) - BN - lrelu layers.
        deconv_filters: filters of the deconvolution over a stacked quadruplet.
        head_filters: filters of the two head convolutions (strides 2 and 4).
        fc_units: units of the fully-connected layer before fc(1).
        kernel_size: square kernel of the convolutions.
        leaky_relu_slope: negative slope of the leaky ReLUs.
        sync_batchnorm: BN statistics over the global batch under tf.distribute.
        space_to_depth: 1 (A.2), or a block b: each frame enters as (H/b, W/b, 3b²), every
            b x b patch's pixels as channels (not in the paper; with the generator's
            full-resolution level the network costs what it does at H/b, yet judges every
            pixel of the full-size frames).

    Call inputs: {"appearance": (batch, H, W, 3), "video": (batch, T, H, W, 3)}; returns
    {"logits": (batch, T-2) one per t = 2..T-1, "features": [layer1, layer2] each
    (batch, T, h_j, w_j, C_j)}.

    Example, the paper's D_a (A.2):
        AppearanceDiscriminator(num_frames=32, frame_size=64, frame_filters=(64, 128, 256),
                                deconv_filters=256, head_filters=(512, 1024), fc_units=64,
                                kernel_size=4, leaky_relu_slope=0.2, sync_batchnorm=True)
    """

    def __init__(self, num_frames, frame_size, frame_filters, deconv_filters, head_filters,
                 fc_units, kernel_size, leaky_relu_slope, sync_batchnorm, space_to_depth=1,
                 **kwargs):
        super().__init__(**kwargs)
        check_space_to_depth(frame_size, space_to_depth)
        self.space_to_depth = int(space_to_depth)
        self.num_frames = num_frames
        self.frame_size = frame_size
        self.frame_filters = tuple(frame_filters)
        self.deconv_filters = deconv_filters
        self.head_filters = tuple(head_filters)
        self.fc_units = fc_units
        self.kernel_size = kernel_size
        self.leaky_relu_slope = leaky_relu_slope
        self.sync_batchnorm = sync_batchnorm
        k = kernel_size
        self.frame_convs = [keras.layers.Conv2D(f, k, strides=2, padding="same",
                                                name=f"frame_conv{i + 1}")
                            for i, f in enumerate(frame_filters)]
        self.frame_norms = [batch_norm(sync_batchnorm, f"frame_bn{i + 1}")
                            for i in range(len(frame_filters))]
        self.deconv = keras.layers.Conv2DTranspose(deconv_filters, 3, strides=1,
                                                   padding="same", name="deconv")
        self.deconv_norm = batch_norm(sync_batchnorm, "deconv_bn")
        self.head_convs = [keras.layers.Conv2D(head_filters[0], k, strides=2, padding="same",
                                               name="head_conv1"),
                           keras.layers.Conv2D(head_filters[1], k, strides=4, padding="same",
                                               name="head_conv2")]
        self.head_norms = [batch_norm(sync_batchnorm, "head_bn1"),
                           batch_norm(sync_batchnorm, "head_bn2")]
        self.flatten = keras.layers.Flatten()
        self.fc = keras.layers.Dense(fc_units, name="fc")
        self.fc_norm = batch_norm(sync_batchnorm, "fc_bn")
        self.out = keras.layers.Dense(1, name="out")

    def get_config(self):
        return {**super().get_config(), "num_frames": self.num_frames,
                "frame_size": self.frame_size, "frame_filters": self.frame_filters,
                "deconv_filters": self.deconv_filters, "head_filters": self.head_filters,
                "fc_units": self.fc_units, "kernel_size": self.kernel_size,
                "leaky_relu_slope": self.leaky_relu_slope, "sync_batchnorm": self.sync_batchnorm,
                "space_to_depth": self.space_to_depth}

    def dummy_inputs(self, batch_size=1):
        return {"appearance": ops.zeros((batch_size, self.frame_size, self.frame_size, 3)),
                "video": ops.zeros((batch_size, self.num_frames, self.frame_size,
                                    self.frame_size, 3))}

    def lrelu(self, x):
        return leaky_relu(x, self.leaky_relu_slope)

    def encode_frames(self, video, training=False):
        """Per-frame conv2d(k,2) - BN - lrelu stack; the outputs of every layer, (batch, T, ...)."""
        x, batch_time = fold_time(ops.cast(video, self.compute_dtype))
        x = space_to_depth(x, self.space_to_depth)
        layers = []
        for conv, norm in zip(self.frame_convs, self.frame_norms):
            x = self.lrelu(norm(conv(x), training=training))
            layers.append(unfold_time(x, batch_time))
        return layers

    def score(self, appearance_code, frame_codes, training=False):
        """Logits for quadruplets (y_a, x_{t-1}, x_t, x_{t+1}), t = 2..T-1 -> (batch, T-2).

        appearance_code: the encoded y_a (batch, h, w, C); frame_codes: the encoded video
        (batch, T, h, w, C).
        """
        steps = frame_codes.shape[1] - 2
        quads = ops.concatenate([
            ops.repeat(appearance_code[:, None], steps, axis=1),
            frame_codes[:, :-2], frame_codes[:, 1:-1], frame_codes[:, 2:]], axis=-1)
        x, batch_time = fold_time(quads)
        x = self.lrelu(self.deconv_norm(self.deconv(x), training=training))
        for conv, norm in zip(self.head_convs, self.head_norms):
            x = self.lrelu(norm(conv(x), training=training))
        x = self.lrelu(self.fc_norm(self.fc(self.flatten(x)), training=training))
        logits = ops.cast(self.out(x)[:, 0], "float32")
        return ops.reshape(logits, (batch_time[0], batch_time[1]))

    def call(self, inputs, training=False):
        appearance_code = self.encode_frames(inputs["appearance"][:, None],
                                             training=training)[-1][:, 0]
        layers = self.encode_frames(inputs["video"], training=training)
        return {"logits": self.score(appearance_code, layers[-1], training=training),
                "features": layers[:2]}


@keras.saving.register_keras_serializable(package="amc_tf")
class MotionDiscriminator(Network):
    """D_m(x, y_a, y^l_m): real/fake given the class, class and velocity heads.

    Args:
        num_frames: T of the videos it judges (y_a plus T-1 frames).
        frame_size: H = W.
        num_classes: c, the classes of y^l_m and of the class head.
        num_keypoints: k; the velocity head gives 2k values per step.
        frame_filters: filters of the per-frame conv2d(k, 2) layers; the convLSTM has the
            last one's (its states start from the encoded y_a).
        head_filters: filters of the conv2d(k, 2) shared by the heads.
        rf_filters: filters of the real/fake head's conv2d(k, 4).
        fc_units: units of the class head's first fully-connected layer.
        class_logit_norm: A.3's BN + lrelu on the class logits.
        kernel_size: square kernel of the convolutions.
        lstm_kernel_size: square kernel of the convLSTM.
        leaky_relu_slope: negative slope of the leaky ReLUs.
        sync_batchnorm: BN statistics over the global batch under tf.distribute.
        space_to_depth: 1 (A.3), or a block b: frames enter as (H/b, W/b, 3b²), as in D_a.

    Call inputs: {"video": (batch, T, H, W, 3) whose frame 0 is y_a, "motion_class": (batch,),
    NO_LABEL for none}.
    Returns {"logits": (batch,) class-conditional real/fake, "class_logits": (batch, c),
    "velocity": (batch, T-1, 2k) in [-1, 1], "features": [layer1, layer2] each
    (batch, T-1, h_j, w_j, C_j) for the T-1 frames after y_a}.

    Example, the paper's NATOPS D_m (A.3):
        MotionDiscriminator(num_frames=32, frame_size=64, num_classes=24, num_keypoints=9,
                            frame_filters=(64, 128, 256), head_filters=64, rf_filters=64,
                            fc_units=64, class_logit_norm=True, kernel_size=4,
                            lstm_kernel_size=3, leaky_relu_slope=0.2, sync_batchnorm=True)
    """

    def __init__(self, num_frames, frame_size, num_classes, num_keypoints, frame_filters,
                 head_filters, rf_filters, fc_units, class_logit_norm, kernel_size,
                 lstm_kernel_size, leaky_relu_slope, sync_batchnorm, space_to_depth=1, **kwargs):
        super().__init__(**kwargs)
        check_space_to_depth(frame_size, space_to_depth)
        self.space_to_depth = int(space_to_depth)
        self.num_frames = num_frames
        self.frame_size = frame_size
        self.num_classes = num_classes
        self.num_keypoints = num_keypoints
        self.frame_filters = tuple(frame_filters)
        self.head_filters = head_filters
        self.rf_filters = rf_filters
        self.fc_units = fc_units
        self.class_logit_norm = class_logit_norm
        self.kernel_size = kernel_size
        self.lstm_kernel_size = lstm_kernel_size
        self.leaky_relu_slope = leaky_relu_slope
        self.sync_batchnorm = sync_batchnorm
        k = kernel_size
        self.frame_convs = [keras.layers.Conv2D(f, k, strides=2, padding="same",
                                                name=f"frame_conv{i + 1}")
                            for i, f in enumerate(frame_filters)]
        # conv2d(64) - lrelu - conv2d(128) - BN - lrelu - conv2d(256) - BN - lrelu.
        self.frame_norms = [None] + [batch_norm(sync_batchnorm, f"frame_bn{i + 1}")
                                     for i in range(1, len(frame_filters))]
        self.cell = ConvLSTMCell(frame_filters[-1], lstm_kernel_size, name="convlstm")
        # Shared conv2d(64,2) - BN - lrelu (dashed lines of Figure C).
        self.head_conv = keras.layers.Conv2D(head_filters, k, strides=2, padding="same",
                                             name="head_conv")
        self.head_norm = batch_norm(sync_batchnorm, "head_bn")
        self.flatten = keras.layers.Flatten()
        self.velocity_fc = keras.layers.Dense(2 * num_keypoints, name="velocity_fc")
        self.class_fc1 = keras.layers.Dense(fc_units, name="class_fc1")
        self.class_norm1 = batch_norm(sync_batchnorm, "class_bn1")
        self.class_fc2 = keras.layers.Dense(num_classes, name="class_fc2")
        self.class_norm2 = batch_norm(sync_batchnorm, "class_bn2") if class_logit_norm else None
        self.rf_conv = keras.layers.Conv2D(rf_filters, k, strides=4, padding="same",
                                           name="rf_conv")
        self.rf_norm = batch_norm(sync_batchnorm, "rf_bn")
        self.rf_out = keras.layers.Dense(1, name="rf_out")

    def get_config(self):
        return {**super().get_config(), "num_frames": self.num_frames,
                "frame_size": self.frame_size, "num_classes": self.num_classes,
                "num_keypoints": self.num_keypoints, "frame_filters": self.frame_filters,
                "head_filters": self.head_filters, "rf_filters": self.rf_filters,
                "fc_units": self.fc_units, "class_logit_norm": self.class_logit_norm,
                "kernel_size": self.kernel_size, "lstm_kernel_size": self.lstm_kernel_size,
                "leaky_relu_slope": self.leaky_relu_slope, "sync_batchnorm": self.sync_batchnorm,
                "space_to_depth": self.space_to_depth}

    def dummy_inputs(self, batch_size=1):
        return {"video": ops.zeros((batch_size, self.num_frames, self.frame_size,
                                    self.frame_size, 3)),
                "motion_class": ops.zeros((batch_size,), dtype="int32")}

    def lrelu(self, x):
        return leaky_relu(x, self.leaky_relu_slope)

    def encode_frames(self, video, training=False):
        x, batch_time = fold_time(ops.cast(video, self.compute_dtype))
        x = space_to_depth(x, self.space_to_depth)
        layers = []
        for conv, norm in zip(self.frame_convs, self.frame_norms):
            x = conv(x)
            if norm is not None:
                x = norm(x, training=training)
            x = self.lrelu(x)
            layers.append(unfold_time(x, batch_time))
        return layers

    def score(self, appearance_code, frame_codes, motion_class, training=False):
        """The heads on the encoded y_a (batch, h, w, C) and the encoded frames after it
        (batch, T-1, h, w, C); a motion_class of NO_LABEL (-1) has the zero one-hot."""
        states = [appearance_code, appearance_code]       # initialised from the encoded y_a
        outputs = []
        if not self.cell.built:
            self.cell.build(frame_codes[:, 0].shape)
        step_weights = self.cell.step_weights(frame_codes.shape[1])
        for t in range(frame_codes.shape[1]):
            o, states = self.cell(frame_codes[:, t], states, step_weights=step_weights[t])
            outputs.append(o)
        o, batch_time = fold_time(ops.stack(outputs, axis=1))
        shared = self.lrelu(self.head_norm(self.head_conv(o), training=training))
        velocity = ops.tanh(self.velocity_fc(self.flatten(shared)))      # tanh(fc(#points x 2))
        velocity = unfold_time(velocity, batch_time)
        last = unfold_time(shared, batch_time)[:, -1]                    # from h_{T-1}
        x = self.lrelu(self.class_norm1(self.class_fc1(self.flatten(last)), training=training))
        class_logits = self.class_fc2(x)
        if self.class_norm2 is not None:
            class_logits = self.lrelu(self.class_norm2(class_logits, training=training))
        one_hot = ops.one_hot(ops.cast(motion_class, "int32"), self.num_classes, dtype=last.dtype)
        x = ops.concatenate([last, tile_spatial(one_hot, last.shape[1])], axis=-1)
        x = self.lrelu(self.rf_norm(self.rf_conv(x), training=training))
        logits = self.rf_out(self.flatten(x))[:, 0]
        return {"logits": ops.cast(logits, "float32"),
                "class_logits": ops.cast(class_logits, "float32"),
                "velocity": ops.cast(velocity, "float32")}

    def call(self, inputs, training=False):
        layers = self.encode_frames(inputs["video"], training=training)
        codes = layers[-1]
        out = self.score(codes[:, 0], codes[:, 1:], inputs["motion_class"], training=training)
        out["features"] = [layer[:, 1:] for layer in layers[:2]]
        return out


def build_appearance_discriminator(config, **kwargs):
    """D_a of an AMCConfig; kwargs go to keras.Model (name, ...)."""
    return AppearanceDiscriminator(
        num_frames=config.num_frames, frame_size=config.frame_size,
        frame_filters=config.da_frame_filters, deconv_filters=config.da_deconv_filters,
        head_filters=config.da_head_filters, fc_units=config.da_fc_units,
        kernel_size=config.d_kernel_size, leaky_relu_slope=config.leaky_relu_slope,
        sync_batchnorm=config.sync_batchnorm, space_to_depth=config.d_space_to_depth, **kwargs)


def build_motion_discriminator(config, **kwargs):
    """D_m of an AMCConfig (its dm_lstm_filters is dm_frame_filters[-1], its convLSTM has the
    generator's kernel_size); kwargs go to keras.Model (name, ...)."""
    return MotionDiscriminator(
        num_frames=config.num_frames, frame_size=config.frame_size,
        num_classes=config.num_classes, num_keypoints=config.num_keypoints,
        frame_filters=config.dm_frame_filters, head_filters=config.dm_head_filters,
        rf_filters=config.dm_rf_filters, fc_units=config.dm_fc_units,
        class_logit_norm=config.dm_class_logit_norm, kernel_size=config.d_kernel_size,
        lstm_kernel_size=config.kernel_size, leaky_relu_slope=config.leaky_relu_slope,
        sync_batchnorm=config.sync_batchnorm, space_to_depth=config.d_space_to_depth, **kwargs)
