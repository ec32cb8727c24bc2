"""The TwoStreamVAN generator as one saveable network: both streams' encoders and generators,
rolled forward frame by frame (Sec. 3.4, image-conditioned as amc_tf's task needs)."""

import keras
import tensorflow as tf
from keras import ops

from amc_tf.models.common import Network
from amc_tf.models.twostreamvan.streams import (ContentEncoder, ContentGenerator,
                                                MotionEncoder, MotionGenerator, one_hot_of)


@keras.saving.register_keras_serializable(package="amc_tf.twostreamvan")
class TwoStreamGenerator(Network):
    """x̂ = G(y_a, k, z): the whole T-frame video from an image, a class and T-1 motion codes.

    Frame 0 is y_a. Each next frame (Sec. 3.4, PEERS.md "Generation"): the content stream
    encodes the current frame (E_c's posterior mean: the appearance, then each generated frame),
    G_c turns it into the content vector; the motion history (ConvLSTM, state starting at ones)
    takes z_m of this step and the class; G_m's motion map (outer product of e_m and the content
    vector) gives the separable kernels and masks of every scale, which G_c fuses into its
    layers while decoding the next frame.

    Noise layout: `noise` (batch, (T-1) * M) holds z_m of step t (frame t -> t+1) at
    [t * M, (t + 1) * M); z_m ~ N(0, I) = p(z_m | k), the class entering through the history.

    Args: the streams' own (ContentEncoder, ContentGenerator, MotionEncoder, MotionGenerator),
    named as TwoStreamVANConfig's fields, plus num_frames (T).

    Call inputs {"appearance": (batch, S, S, 3) in [-1, 1], "motion_class": int (batch,),
    "noise": (batch, (T-1) * M)}; returns the video float32 (batch, T, S, S, 3) in [-1, 1].
    """

    def __init__(self, num_frames, frame_size, num_classes, content_dim, motion_dim,
                 content_encoder_filters, content_fc, content_map_channels,
                 content_generator_filters, motion_encoder_filters, motion_encoder_fc,
                 history_channels, motion_state_fc, motion_map_channels,
                 motion_generator_filters, head_channels, head_filters, kernel_size,
                 sync_batchnorm, **kwargs):
        super().__init__(**kwargs)
        self.num_frames = num_frames
        self.frame_size = frame_size
        self.num_classes = num_classes
        self.content_dim = content_dim
        self.motion_dim = motion_dim
        self.content_encoder_filters = tuple(content_encoder_filters)
        self.content_fc = content_fc
        self.content_map_channels = content_map_channels
        self.content_generator_filters = tuple(content_generator_filters)
        self.motion_encoder_filters = tuple(motion_encoder_filters)
        self.motion_encoder_fc = motion_encoder_fc
        self.history_channels = history_channels
        self.motion_state_fc = motion_state_fc
        self.motion_map_channels = motion_map_channels
        self.motion_generator_filters = tuple(motion_generator_filters)
        self.head_channels = tuple(head_channels)
        self.head_filters = head_filters
        self.kernel_size = kernel_size
        self.sync_batchnorm = sync_batchnorm
        self.content_encoder = ContentEncoder(
            frame_size=frame_size, num_classes=num_classes, content_dim=content_dim,
            filters=content_encoder_filters, fc_units=content_fc, name="content_encoder")
        self.content_generator = ContentGenerator(
            frame_size=frame_size, num_classes=num_classes, content_dim=content_dim,
            vector_units=content_fc, map_channels=content_map_channels,
            filters=content_generator_filters, name="content_generator")
        self.motion_encoder = MotionEncoder(
            frame_size=frame_size, num_classes=num_classes, motion_dim=motion_dim,
            filters=motion_encoder_filters, fc_units=motion_encoder_fc,
            sync_batchnorm=sync_batchnorm, name="motion_encoder")
        self.motion_generator = MotionGenerator(
            frame_size=frame_size, num_classes=num_classes, motion_dim=motion_dim,
            content_units=content_fc, history_channels=history_channels,
            state_units=motion_state_fc, map_channels=motion_map_channels,
            filters=motion_generator_filters, head_channels=head_channels,
            head_filters=head_filters, kernel_size=kernel_size, sync_batchnorm=sync_batchnorm,
            name="motion_generator")

    def get_config(self):
        return {**super().get_config(), **{k: getattr(self, k) for k in (
            "num_frames", "frame_size", "num_classes", "content_dim", "motion_dim",
            "content_encoder_filters", "content_fc", "content_map_channels",
            "content_generator_filters", "motion_encoder_filters", "motion_encoder_fc",
            "history_channels", "motion_state_fc", "motion_map_channels",
            "motion_generator_filters", "head_channels", "head_filters", "kernel_size",
            "sync_batchnorm")}}

    def dummy_inputs(self, batch_size=1):
        return {"appearance": ops.zeros((batch_size, self.frame_size, self.frame_size, 3)),
                "motion_class": ops.zeros((batch_size,), dtype="int32"),
                "noise": ops.zeros((batch_size, (self.num_frames - 1) * self.motion_dim))}

    def build(self, input_shape=None):
        if not self.built:
            # Each stream on its own dummy inputs (generation calls their methods, not __call__;
            # the motion encoder is not on the generation path at all), then the whole rollout.
            for net in (self.content_encoder, self.content_generator, self.motion_encoder,
                        self.motion_generator):
                net.build()
            self.call(self.dummy_inputs(), training=False)
        self.built = True

    # ------------------------------------------------------------------ one step
    def content_of(self, frame, motion_class):
        """E_c's posterior mean of a frame: z_c (batch, C)."""
        return self.content_encoder({"frame": frame, "motion_class": motion_class})[0]

    def next_frame(self, frame, motion, motion_class, state, training=False):
        """One step of Fig. 2: the frame after `frame` given z_m (batch, M) and the history
        state. Returns (frame float32, state, [h_c^s] unfused, [h^_c^s] fused, motion)."""
        one_hot = one_hot_of(motion_class, self.num_classes, self.compute_dtype)
        vector = self.content_generator.content_vector(self.content_of(frame, motion_class),
                                                       motion_class)
        history, state = self.motion_generator.history_step(motion, one_hot, state)
        fusion = self.motion_generator.motion(history, vector, training=training)
        out, layers, fused = self.content_generator.decode(vector, fusion)
        return out, state, layers, fused, fusion

    def rollout(self, first_frame, motion_class, motion, training=False):
        """Frames 1..T-1 from frame 0, each from the previous generated one: (batch, T, ...).
        Training (the harder step's prior video) runs a tf.while_loop, so the graph and its
        gradient do not grow with T; generation unrolls the T-1 steps (a graph without loop
        bodies: profilers and XLA see every op)."""
        steps = self.num_frames - 1
        first = tf.cast(first_frame, tf.float32)
        motion = tf.transpose(tf.reshape(tf.cast(motion, tf.float32),
                                         [-1, steps, self.motion_dim]), [1, 0, 2])
        h, c = self.motion_generator.initial_state(tf.shape(first)[0])

        def body(t, frame, h, c, frames):
            frame, (h, c), _, _, _ = self.next_frame(frame, motion[t], motion_class, [h, c],
                                                     training=training)
            return t + 1, frame, h, c, frames.write(t, frame)

        frames = tf.TensorArray(tf.float32, size=steps, element_shape=first.shape)
        if training:
            _, _, _, _, frames = tf.while_loop(lambda t, *_: t < steps, body,
                                               (tf.constant(0), first, h, c, frames))
        else:
            loop = (0, first, h, c, frames)
            for _ in range(steps):
                loop = body(*loop)
            frames = loop[-1]
        return tf.concat([first[:, None], tf.transpose(frames.stack(), [1, 0, 2, 3, 4])],
                         axis=1)

    def call(self, inputs, training=False):
        return self.rollout(inputs["appearance"], inputs["motion_class"], inputs["noise"],
                            training=training)

    # ------------------------------------------------------------------ the paper's sampling
    def sample_first_frame(self, motion_class, content_noise):
        """Sec. 3.4: the first frame from z_c ~ p(z_c | k) = N(0, I): G_c(z_c, k) (batch, S, S, 3)."""
        return self.content_generator({"content": content_noise, "motion_class": motion_class})

    def generate_from_prior(self, motion_class, content_noise, noise):
        """The paper's class-conditional generation: frame 0 from the prior, then the rollout."""
        first = self.sample_first_frame(motion_class, content_noise)
        return self.rollout(first, motion_class, noise)


def build_generator(config, **kwargs):
    """The generator of a TwoStreamVANConfig; kwargs go to keras.Model (name, ...)."""
    c = config
    return TwoStreamGenerator(
        num_frames=c.num_frames, frame_size=c.frame_size, num_classes=c.num_classes,
        content_dim=c.content_dim, motion_dim=c.motion_dim,
        content_encoder_filters=c.content_encoder_filters, content_fc=c.content_fc,
        content_map_channels=c.content_map_channels,
        content_generator_filters=c.content_generator_filters,
        motion_encoder_filters=c.motion_encoder_filters, motion_encoder_fc=c.motion_encoder_fc,
        history_channels=c.history_channels, motion_state_fc=c.motion_state_fc,
        motion_map_channels=c.motion_map_channels,
        motion_generator_filters=c.motion_generator_filters, head_channels=c.head_channels,
        head_filters=c.head_filters, kernel_size=c.kernel_size,
        sync_batchnorm=c.sync_batchnorm, **kwargs)
