"""Imaginator: G, D_V and D_I trained as the authors train them (../shared/PEERS.md, Training).

Per iteration: G generates the video of every clip once from its first frame, its class and z;
G minimises w_l1 * L1(x̂, x) + BCE(D_V(x̂, c), 1) + BCE(D_I(x̂ frames), 1); then D_V and D_I each
minimise BCE(real, 1) + BCE(fake, 0) on that same x̂. The discriminators do not change during
G's update and G's update does not reach x̂ as the discriminators see it (the authors detach it),
so one forward pass gives both updates exactly: G's gradient and the discriminators' gradient
are taken from the same tape and applied G first. Adam lr 2e-4, betas (0.5, 0.999), no label
smoothing, gradient penalty or learning-rate decay.
"""

import keras
import tensorflow as tf

from amc_tf import losses
from amc_tf.models.common import AdversarialModel
from amc_tf.models.imaginator.config import ImaginatorConfig
from amc_tf.models.imaginator.discriminators import build_video_discriminator
from amc_tf.models.image_discriminator import build_image_discriminator
from amc_tf.models.imaginator.generator import build_generator, generator_inputs

LOSS_NAMES = ("d_loss", "d_video", "d_image", "g_loss", "g_video", "g_image", "l1",
              "d_video_real_acc", "d_video_fake_acc", "d_image_real_acc", "d_image_fake_acc")


def sample_frames(video, count):
    """`count` distinct frames of each video, drawn uniformly: (batch, count, H, W, 3)."""
    shape = tf.shape(video)
    scores = tf.random.uniform([shape[0], shape[1]])
    index = tf.math.top_k(scores, k=count).indices
    return tf.gather(video, index, batch_dims=1)


@keras.saving.register_keras_serializable(package="amc_tf.imaginator")
class Imaginator(AdversarialModel):
    """The generator and both discriminators, with the authors' training iteration as
    `train_step`.

    Batches are dicts (`amc_tf.inputs.clip_to_model_inputs`): video float32 (B, T, H, W, 3) in
    [-1, 1] whose frame 0 is the conditioning image, motion_class int32 (B,), optionally noise
    (B, noise_dim); velocity and subject_id are ignored.
    """

    config_class = ImaginatorConfig

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.generator = build_generator(config, name="generator")
        self.video_discriminator = build_video_discriminator(config, name="video_discriminator")
        self.image_discriminator = build_image_discriminator(config, name="image_discriminator")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_NAMES}

    # ------------------------------------------------------------------ setup
    def discriminators(self):
        return [self.video_discriminator, self.image_discriminator]

    def call(self, inputs, training=False):
        return self.generator(generator_inputs(inputs), training=training)

    # ------------------------------------------------------------------ the iteration
    def compute_losses(self, y, fake, training=True):
        """Every per-sample loss term (batch,) of one iteration from one forward pass of each
        discriminator on [real; fake]."""
        c = self.config
        video, motion_class = y["video"], y["motion_class"]
        batch = tf.shape(video)[0]
        split = lambda x: (x[:batch], x[batch:])
        v_real, v_fake = split(self.video_discriminator(
            {"video": tf.concat([video, fake], axis=0),
             "motion_class": tf.concat([motion_class, motion_class], axis=0)},
            training=training))
        # D_I judges image_d_frames random frames of each video, each as an image.
        n = c.image_d_frames
        frames = tf.concat([sample_frames(video, n), sample_frames(fake, n)], axis=0)
        size = c.frame_size
        i_logits = self.image_discriminator(tf.reshape(frames, [-1, size, size, 3]),
                                            training=training)
        i_real, i_fake = split(tf.reshape(i_logits, [-1, n]))
        accuracy = lambda logits, real: tf.reduce_mean(
            tf.cast(logits > 0 if real else logits < 0, tf.float32),
            axis=list(range(1, len(logits.shape))))
        return {
            "l1": losses.reconstruction_l1(video, fake),       # all T frames, frame 0 = y_a
            "g_video": losses.bce_with_logits(v_fake, 1.0),
            "g_image": losses.bce_with_logits(i_fake, 1.0),
            "d_video": losses.bce_with_logits(v_real, 1.0) + losses.bce_with_logits(v_fake, 0.0),
            "d_image": losses.bce_with_logits(i_real, 1.0) + losses.bce_with_logits(i_fake, 0.0),
            "d_video_real_acc": accuracy(v_real, True), "d_video_fake_acc": accuracy(v_fake, False),
            "d_image_real_acc": accuracy(i_real, True), "d_image_fake_acc": accuracy(i_fake, False),
        }

    def total_losses(self, terms):
        """Per-sample D and G objectives."""
        c = self.config
        g_total = c.w_l1 * terms["l1"] + c.w_video * terms["g_video"] + \
            c.w_image * terms["g_image"]
        return terms["d_video"] + terms["d_image"], g_total

    def train_step(self, data):
        """One G step, then both discriminators, on the same generated videos (module doc).
        Losses are averaged over the global batch (tf.distribute-safe)."""
        if isinstance(data, (tuple, list)):
            data = data[0]
        y = self.clip_conditions(data)   # frame 0 is y_a
        with tf.GradientTape(persistent=True) as tape:
            fake = self.generator(generator_inputs(y), training=True)
            terms = self.compute_losses(y, fake, training=True)
            d_total, g_total = self.total_losses(terms)
            d_loss = tf.nn.compute_average_loss(d_total)
            g_loss = tf.nn.compute_average_loss(g_total)
        g_vars = self.generator_variables()
        d_vars = self.discriminator_variables()
        g_grads = tape.gradient(g_loss, g_vars)
        d_grads = tape.gradient(d_loss, d_vars)
        del tape
        self.g_optimizer.apply_gradients(zip(g_grads, g_vars))
        self.d_optimizer.apply_gradients(zip(d_grads, d_vars))
        return self.update_trackers(terms, d_total, g_total)

    def update_trackers(self, terms, d_total, g_total):
        values = dict(terms, d_loss=d_total, g_loss=g_total)
        for name, tracker in self.trackers.items():
            tracker.update_state(values[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}
