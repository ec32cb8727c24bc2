"""G3an: G_V against D_V and D_I, trained as PEERS.md describes the authors' iteration.

Per iteration: G generates one video per clip from z = [z_a, z_m] (and the clip's class when
conditional); D_V and D_I take a step on BCE(real, 1) + BCE(fake, 0); then G takes a step on the
non-saturating BCE(D_V(fake), 1) + BCE(D_I(fake frames), 1) against the updated discriminators,
on the same fake (one forward pass of G, kept on a persistent tape). No reconstruction term: G3AN
has no appearance input to reconstruct. Adam lr 2e-4, betas (0.5, 0.999).
"""

import keras
import tensorflow as tf

from amc_tf import losses
from amc_tf.models.common import AdversarialModel
from amc_tf.models.g3an.config import G3anConfig
from amc_tf.models.g3an.discriminators import build_video_discriminator
from amc_tf.models.image_discriminator import build_image_discriminator
from amc_tf.models.g3an.generator import build_generator, generator_inputs

LOSS_NAMES = ("d_loss", "d_video", "d_image", "g_loss", "g_video", "g_image",
              "d_video_real_acc", "d_video_fake_acc", "d_image_real_acc", "d_image_fake_acc")


def sample_frames(video, count):
    """`count` distinct frames of each video, drawn uniformly: (batch, count, H, W, 3)."""
    shape = tf.shape(video)
    scores = tf.random.uniform([shape[0], shape[1]])
    index = tf.math.top_k(scores, k=count).indices
    return tf.gather(video, index, batch_dims=1)


def _accuracy(logits, real):
    """Per-sample fraction of logits on the right side of 0."""
    hits = tf.cast(logits > 0 if real else logits < 0, tf.float32)
    return tf.reduce_mean(hits, axis=list(range(1, len(logits.shape))))


@keras.saving.register_keras_serializable(package="amc_tf.g3an")
class G3an(AdversarialModel):
    """The generator and both discriminators, with a D step then a G step as `train_step`.

    Batches are dicts (`amc_tf.inputs.clip_to_model_inputs`): video float32 (B, T, H, W, 3) in
    [-1, 1], motion_class int32 (B,), optionally noise (B, noise_dim); velocity and subject_id are
    ignored.
    """

    config_class = G3anConfig

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
    def discriminate(self, video, frames, motion_class, training=True):
        """D_V logits (batch,) and D_I logits (batch, image_d_frames)."""
        n, size = self.config.image_d_frames, self.config.frame_size
        v = self.video_discriminator({"video": video, "motion_class": motion_class},
                                     training=training)
        i = self.image_discriminator(tf.reshape(frames, [-1, size, size, 3]), training=training)
        return v, tf.reshape(i, [-1, n])

    def discriminator_terms(self, real, real_frames, fake, fake_frames, motion_class,
                            training=True):
        """Per-sample D losses and accuracies: one pass of each D on [real; fake]."""
        batch = tf.shape(real)[0]
        v, i = self.discriminate(tf.concat([real, fake], axis=0),
                                 tf.concat([real_frames, fake_frames], axis=0),
                                 tf.concat([motion_class, motion_class], axis=0), training)
        v_real, v_fake, i_real, i_fake = v[:batch], v[batch:], i[:batch], i[batch:]
        return {
            "d_video": losses.bce_with_logits(v_real, 1.0) + losses.bce_with_logits(v_fake, 0.0),
            "d_image": losses.bce_with_logits(i_real, 1.0) + losses.bce_with_logits(i_fake, 0.0),
            "d_video_real_acc": _accuracy(v_real, True),
            "d_video_fake_acc": _accuracy(v_fake, False),
            "d_image_real_acc": _accuracy(i_real, True),
            "d_image_fake_acc": _accuracy(i_fake, False),
        }

    def generator_terms(self, fake, fake_frames, motion_class, training=True):
        """Per-sample non-saturating G losses: BCE(D(fake), 1)."""
        v_fake, i_fake = self.discriminate(fake, fake_frames, motion_class, training)
        return {"g_video": losses.bce_with_logits(v_fake, 1.0),
                "g_image": losses.bce_with_logits(i_fake, 1.0)}

    def train_step(self, data):
        """A D step, then a G step against the updated Ds on the same fake (module doc). Losses
        are averaged over the global batch (tf.distribute-safe)."""
        if isinstance(data, (tuple, list)):
            data = data[0]
        c = self.config
        y = self.clip_conditions(data)
        real, motion_class = y["video"], y["motion_class"]
        d_vars, g_vars = self.discriminator_variables(), self.generator_variables()
        with tf.GradientTape(persistent=True) as tape:
            fake = self.generator(generator_inputs(y), training=True)
            # D_I judges image_d_frames random frames of each video, each as an image.
            fake_frames = sample_frames(fake, c.image_d_frames)
            d_terms = self.discriminator_terms(
                real, sample_frames(real, c.image_d_frames), tf.stop_gradient(fake),
                tf.stop_gradient(fake_frames), motion_class)
            d_total = d_terms["d_video"] + d_terms["d_image"]
            d_loss = tf.nn.compute_average_loss(d_total)
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
        with tape:                         # the same tape: G's forward pass is on it
            g_terms = self.generator_terms(fake, fake_frames, motion_class)
            g_total = c.w_video * g_terms["g_video"] + c.w_image * g_terms["g_image"]
            g_loss = tf.nn.compute_average_loss(g_total)
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
        del tape
        return self.update_trackers(dict(d_terms, **g_terms), d_total, g_total)

    def update_trackers(self, terms, d_total, g_total):
        values = dict(terms, d_loss=d_total, g_loss=g_total)
        for name, tracker in self.trackers.items():
            tracker.update_state(values[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}
