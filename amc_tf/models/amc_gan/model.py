"""AMCGAN: G, D_a and D_m trained by Algorithm 1 with the conditioning scheme of Tables 1-2."""

import keras
import numpy as np
from keras import ops

from amc_tf import losses
from amc_tf.models.common import AdversarialModel, on_tensorflow
from amc_tf.models.amc_gan.config import AMCConfig
from amc_tf.models.amc_gan.discriminators import (build_appearance_discriminator,
                                                  build_motion_discriminator)
from amc_tf.models.amc_gan.conditions import generator_inputs
from amc_tf.models.amc_gan.generator import NO_LABEL, build_generator

LOSS_NAMES = ("d_loss", "d_adv", "d_aux_ce", "d_aux_mse", "g_loss", "g_adv", "g_aux", "l1",
              "l1_motion", "d_plus", "rank", "d_real_acc", "d_fake_acc")
# Optional batch keys: each clip's mismatched partner (`mismatch_indices`) for y'_a and y'_m. On
# TensorFlow the step draws them itself; other backends' batches carry them (and `noise`).
MISMATCH_KEYS = ("index_mm_a", "index_mm_m")


def mismatch_indices(keys, mode="random"):
    """For each clip i, the index j of another clip of the batch with keys[j] != keys[i].

    "random": uniform over such j (falls back to i+1 when every key equals keys[i]);
    "pairs": j = i xor 1, deterministic (used where replicas must see the same draw).

    TensorFlow's stateful draws, inside the TF train step; `draw_mismatch_indices` draws from
    the same distribution in numpy for batches that carry their own (MISMATCH_KEYS).
    """
    import tensorflow as tf
    size = tf.shape(keys)[0]
    rng = tf.range(size)
    if mode == "pairs":
        return tf.bitwise.bitwise_xor(rng, 1)
    differ = tf.not_equal(keys[:, None], keys[None, :])
    logits = tf.where(differ, 0.0, -1e9)
    draw = tf.cast(tf.random.categorical(logits, 1)[:, 0], tf.int32)
    return tf.where(tf.reduce_any(differ, axis=1), draw, (rng + 1) % size)


def draw_mismatch_indices(keys, mode="random", rng=None):
    """`mismatch_indices`'s rule in numpy, for a batch that carries its draws (int32 (B,))."""
    keys = np.asarray(keys).reshape(-1)
    size = keys.shape[0]
    order = np.arange(size)
    if mode == "pairs":
        return (order ^ 1).astype(np.int32)
    rng = np.random.default_rng() if rng is None else rng
    out = (order + 1) % size
    for i in range(size):
        others = np.flatnonzero(keys != keys[i])
        if others.size:
            out[i] = rng.choice(others)
    return out.astype(np.int32)


@keras.saving.register_keras_serializable(package="amc_tf")
class AMCGAN(AdversarialModel):
    """The generator and both discriminators, with Algorithm 1 as `train_step`.

    Batches are dicts: video float32 (B, T, H, W, 3) in [-1, 1] (frame 0 is y_a), velocity
    (B, T-1, 2k), motion_class int32 (B,), subject_id int (B,) (clips with another subject give
    the mismatched appearance y_a'), optionally noise (B, p) and the mismatch indices
    (MISMATCH_KEYS), which batches for other backends than TensorFlow must carry.

    The networks are built from the AMCConfig's sizes; its Table 4 switches (use_*) act here,
    where the networks are called: a removed condition is fed as zeros, a removed
    discriminator or loss term is left out.
    """

    config_class = AMCConfig

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.generator = build_generator(config, name="generator")
        self.appearance_discriminator = build_appearance_discriminator(
            config, name="appearance_discriminator")
        self.motion_discriminator = build_motion_discriminator(config,
                                                               name="motion_discriminator")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_NAMES}
        # Set by train_gan for the config's reconstruction warm-up; read when train_step is
        # traced, so flipping it needs a new train function (make_train_function(force=True)).
        self.reconstruction_warmup = False

    # ------------------------------------------------------------------ setup
    @property
    def use_da(self):
        return self.config.use_da

    @property
    def use_dm(self):
        return self.config.use_dm

    def discriminators(self):
        return ([self.appearance_discriminator] if self.use_da else []) + \
               ([self.motion_discriminator] if self.use_dm else [])

    def networks(self):
        # Both discriminators exist (and are checkpointed) under every ablation.
        return (self.generator, self.appearance_discriminator, self.motion_discriminator)

    def call(self, inputs, training=False):
        return self.generator(generator_inputs(inputs, self.config), training=training)

    # Table 4: the discriminators see a removed condition as zeros, as the generator does.
    def appearance_code(self, codes):
        """The encoded y_a, frame 0 of a discriminator's codes (batch, T, h, w, C); zero under
        "No y_a"."""
        code = codes[:, 0]
        return code if self.config.use_appearance else ops.zeros_like(code)

    def motion_score(self, codes, motion_class, training):
        """D_m's heads on its codes of a video whose frame 0 is y_a, given the class y^l_m;
        with the zero one-hot (NO_LABEL) under "No y_m"."""
        if not self.config.use_motion:
            motion_class = ops.full_like(motion_class, NO_LABEL)
        return self.motion_discriminator.score(self.appearance_code(codes), codes[:, 1:],
                                               motion_class, training=training)

    # ------------------------------------------------------------------ Algorithm 1
    def label_smoothing(self):
        """Smoothing ε decayed by 1e-5 per mini-batch (§3.4)."""
        c = self.config
        step = ops.cast(self.d_optimizer.iterations, "float32")
        return ops.maximum(0.0, c.label_smoothing - c.label_smoothing_decay * step)

    def matched_conditions(self, data):
        """y = (y_a, y_m) of each clip and z (Algorithm 1, line 3)."""
        return dict(self.clip_conditions(data), velocity=data["velocity"])

    def conditions(self, data):
        """y, the mismatched y'_a / y'_m (Table 1), and z (Algorithm 1, line 3). The mismatched
        partners are the batch's own (MISMATCH_KEYS) where it carries them, else drawn here on
        TensorFlow (`mismatch_indices`)."""
        c = self.config
        y = self.matched_conditions(data)
        appearance, motion_class = y["appearance"], y["motion_class"]
        missing = [key for key in MISMATCH_KEYS if key not in data]
        if missing and not on_tensorflow():
            raise ValueError(f"the batch has no {', '.join(map(repr, missing))}: under the "
                             f"{keras.backend.backend()} backend the batch carries the mismatch "
                             f"indices (draw_mismatch_indices)")
        if "index_mm_a" in data:
            idx_a = ops.cast(data["index_mm_a"], "int32")
        else:                                                       # different appearance
            import tensorflow as tf
            subject = data.get("subject_id", tf.range(tf.shape(appearance)[0]))
            idx_a = mismatch_indices(subject, c.mismatch_mode)
        if "index_mm_m" in data:
            idx_m = ops.cast(data["index_mm_m"], "int32")
        else:                                                       # different class
            idx_m = mismatch_indices(motion_class, c.mismatch_mode)
        return {
            **y,
            "index_mm_a": idx_a, "index_mm_m": idx_m,
            "appearance_mm": ops.take(appearance, idx_a, axis=0),
            "motion_class_mm": ops.take(motion_class, idx_m, axis=0),
            "velocity_mm": ops.take(data["velocity"], idx_m, axis=0),
        }

    def generate_cases(self, y, training=True):
        """x̂|y, x̂|y'_a,y_m, x̂|y_a,y'_m from one generator call (Table 1, Algorithm 1 line 4)."""
        c = self.config
        if not c.use_mismatch:
            return {"fake": self.generator(generator_inputs(y, c), training=training)}
        cat = lambda *xs: ops.concatenate(xs, axis=0)
        inputs = {
            "appearance": cat(y["appearance"], y["appearance_mm"], y["appearance"]),
            "motion_class": cat(y["motion_class"], y["motion_class"], y["motion_class_mm"]),
            "velocity": cat(y["velocity"], y["velocity"], y["velocity_mm"]),
            "noise": cat(y["noise"], y["noise"], y["noise"]),
        }
        fake, fake_a, fake_m = ops.split(
            self.generator(generator_inputs(inputs, c), training=training), 3, axis=0)
        return {"fake": fake, "fake_a": fake_a, "fake_m": fake_m}

    def compute_losses(self, y, fakes, training=True):
        """Every per-sample loss term of Algorithm 1, lines 5-16 (one forward pass).

        Returns a dict of (batch,) tensors: d_adv, d_aux_ce, d_aux_mse (the D side) and g_adv,
        l1, l1_motion, d_plus, rank (the G side), plus d_mismatched (the (x|y, y') terms, for tests).
        """
        c = self.config
        eps = self.label_smoothing()
        w_real, w_mm, w_fake, w_fake_mm = c.d_case_weights           # Algorithm 1, line 7
        if not c.use_mismatch:
            w_real, w_mm, w_fake, w_fake_mm = 1.0, 0.0, 1.0, 0.0     # plain conditional GAN
        video, appearance = y["video"], y["appearance"]
        with_first = lambda first, frames: ops.concatenate([first[:, None], frames], axis=1)
        zeros = ops.zeros_like(video[:, 0, 0, 0, 0])
        out = {name: zeros for name in ("d_adv", "d_aux_ce", "d_aux_mse", "g_aux", "g_adv",
                                        "d_plus",
                                        "rank", "d_mismatched", "d_real_acc", "d_fake_acc")}
        fake = fakes["fake"]
        out["l1"] = losses.reconstruction_l1(video[:, 1:], fake)
        out["l1_motion"] = losses.motion_weighted_l1(video[:, 1:], fake, appearance)
        n_d = 0

        if self.use_da:
            da = self.appearance_discriminator
            real_codes = da.encode_frames(video, training=training)
            cond = self.appearance_code(real_codes[-1])
            s_r = da.score(cond, real_codes[-1], training=training)
            fake_videos = [with_first(appearance, fake)]
            if c.use_mismatch:
                fake_videos.append(with_first(y["appearance_mm"], fakes["fake_a"]))
            fake_codes = da.encode_frames(ops.concatenate(fake_videos, axis=0),
                                          training=training)
            fake_cond = self.appearance_code(fake_codes[-1])
            s_fakes = ops.split(da.score(fake_cond, fake_codes[-1], training=training),
                               len(fake_videos), axis=0)
            d_adv = w_real * losses.bce_with_logits(s_r, 1.0 - eps) + \
                w_fake * losses.bce_with_logits(s_fakes[0], 0.0)
            g_adv = losses.bce_with_logits(s_fakes[0], 1.0)
            if c.use_mismatch:
                # (x|y, y'_a): real frames, another clip's appearance -> fake, no G gradient.
                cond_mm = ops.take(cond, y["index_mm_a"], axis=0)    # codes of the clips' y_a'
                s_m = da.score(cond_mm, real_codes[-1], training=training)
                d_mm = losses.bce_with_logits(s_m, 0.0)
                out["d_mismatched"] += d_mm
                d_adv += w_mm * d_mm + w_fake_mm * losses.bce_with_logits(s_fakes[1], 0.0)
                g_adv += losses.bce_with_logits(s_fakes[1], 1.0)
            out["d_adv"] += d_adv
            out["g_adv"] += g_adv
            out["d_real_acc"] += ops.mean(ops.cast(s_r > 0, "float32"), axis=1)
            out["d_fake_acc"] += ops.mean(ops.cast(s_fakes[0] < 0, "float32"), axis=1)
            n_d += 1
            # Perceptual ranking with D_a for the mismatched appearance (§3.2).
            real_feats = [f[:, 1:] for f in real_codes[:2]]
            fake_feats = [ops.split(f[:, 1:], len(fake_videos), axis=0) for f in fake_codes[:2]]
            d_plus = losses.perceptual_distances(real_feats, [f[0] for f in fake_feats],
                                                 c.gram)
            out["d_plus"] += sum(d_plus)
            if c.use_mismatch and c.use_appearance:
                d_minus = losses.perceptual_distances(real_feats, [f[1] for f in fake_feats],
                                                      c.gram)
                out["rank"] += losses.ranking_loss(d_plus, d_minus, c.rank_margin_da)

        if self.use_dm:
            dm = self.motion_discriminator
            real_codes = dm.encode_frames(video, training=training)
            real = self.motion_score(real_codes[-1], y["motion_class"], training)
            fake_videos = [with_first(appearance, fake)]
            fake_classes = [y["motion_class"]]
            if c.use_mismatch:
                fake_videos.append(with_first(appearance, fakes["fake_m"]))
                fake_classes.append(y["motion_class_mm"])
            fake_codes = dm.encode_frames(ops.concatenate(fake_videos, axis=0),
                                          training=training)
            fake_out = self.motion_score(fake_codes[-1], ops.concatenate(fake_classes, axis=0),
                                         training)
            n_fake = len(fake_videos)
            s_f = ops.split(fake_out["logits"], n_fake, axis=0)
            l_f = ops.split(fake_out["class_logits"], n_fake, axis=0)
            v_f = ops.split(fake_out["velocity"], n_fake, axis=0)
            d_adv = w_real * losses.bce_with_logits(real["logits"], 1.0 - eps) + \
                w_fake * losses.bce_with_logits(s_f[0], 0.0)
            g_adv = losses.bce_with_logits(s_f[0], 1.0)
            # L_Daux (Eq. (7), Algorithm 1 line 9): velocity and class of r, f (and f').
            ce = lambda logits, labels: losses.class_cross_entropy(
                logits, labels, c.num_classes, eps)
            aux_ce = ce(real["class_logits"], y["motion_class"]) + ce(l_f[0], y["motion_class"])
            aux_mse = losses.velocity_mse(y["velocity"], real["velocity"]) + \
                losses.velocity_mse(y["velocity"], v_f[0])
            g_aux = c.w_ce * ce(l_f[0], y["motion_class"]) + \
                c.w_mse * losses.velocity_mse(y["velocity"], v_f[0])
            if c.use_mismatch:
                g_aux += c.w_ce * ce(l_f[1], y["motion_class_mm"]) + \
                    c.w_mse * losses.velocity_mse(y["velocity_mm"], v_f[1])
            if c.use_motion:
                out["g_aux"] += g_aux
            if c.use_mismatch:
                # (x|y, y'_m): the real video with another class -> fake, no G gradient.
                s_m = self.motion_score(real_codes[-1], y["motion_class_mm"],
                                        training)["logits"]
                d_mm = losses.bce_with_logits(s_m, 0.0)
                out["d_mismatched"] += d_mm
                d_adv += w_mm * d_mm + w_fake_mm * losses.bce_with_logits(s_f[1], 0.0)
                g_adv += losses.bce_with_logits(s_f[1], 1.0)
                aux_ce += ce(l_f[1], y["motion_class_mm"])
                aux_mse += losses.velocity_mse(y["velocity_mm"], v_f[1])
            out["d_adv"] += d_adv
            out["g_adv"] += g_adv
            if c.use_daux and c.use_motion:
                out["d_aux_ce"] += aux_ce
                out["d_aux_mse"] += aux_mse
            out["d_real_acc"] += ops.cast(real["logits"] > 0, "float32")
            out["d_fake_acc"] += ops.cast(s_f[0] < 0, "float32")
            n_d += 1
            # Perceptual ranking with D_m for the mismatched motion (§3.2).
            real_feats = [f[:, 1:] for f in real_codes[:2]]
            fake_feats = [ops.split(f[:, 1:], n_fake, axis=0) for f in fake_codes[:2]]
            d_plus = losses.perceptual_distances(real_feats, [f[0] for f in fake_feats],
                                                 c.gram)
            out["d_plus"] += sum(d_plus)
            if c.use_mismatch and c.use_motion:
                d_minus = losses.perceptual_distances(real_feats, [f[1] for f in fake_feats],
                                                      c.gram)
                out["rank"] += losses.ranking_loss(d_plus, d_minus, c.rank_margin_dm)

        if n_d:
            out["d_real_acc"] /= float(n_d)
            out["d_fake_acc"] /= float(n_d)
        return out

    def total_losses(self, terms):
        """Per-sample D and G objectives with Table B's weights (Eq. (4), lines 11 and 17)."""
        c = self.config
        d_total = c.w_gan * terms["d_adv"] + c.w_ce * terms["d_aux_ce"] + \
            c.w_mse * terms["d_aux_mse"]
        g_total = c.w_gan * terms["g_adv"]
        if c.g_aux_weight:                                   # not in the paper, see config
            g_total += c.g_aux_weight * terms["g_aux"]
        if c.use_gaux:                                       # L_Gaux, Eq. (8)
            g_total += c.w_l1 * terms["l1"] + c.w_dplus * terms["d_plus"]
            if c.w_l1_motion:                                # not in the paper, see config
                g_total += c.w_l1_motion * terms["l1_motion"]
        if c.use_rank:                                       # L_rank, Eq. (6)
            g_total += c.w_rank * terms["rank"]
        return d_total, g_total

    def train_step(self, data):
        """Algorithm 1: one forward pass (lines 3-6, 12-13), one D update (line 11) and one G
        update (line 17). Losses are averaged over the global batch (tf.distribute-safe).
        TensorFlow's step (`amc_tf.models.amc_gan.jax_step` runs the same under JAX)."""
        import tensorflow as tf
        if isinstance(data, (tuple, list)):
            data = data[0]
        if self.reconstruction_warmup:
            return self.reconstruction_step(data)
        y = self.conditions(data)
        with tf.GradientTape(persistent=True) as tape:
            fakes = self.generate_cases(y, training=True)
            terms = self.compute_losses(y, fakes, training=True)
            d_total, g_total = self.total_losses(terms)
            d_loss = tf.nn.compute_average_loss(d_total)
            g_loss = tf.nn.compute_average_loss(g_total)
        d_vars = self.discriminator_variables()
        g_vars = self.generator_variables()
        d_grads = tape.gradient(d_loss, d_vars) if d_vars else []
        g_grads = tape.gradient(g_loss, g_vars)
        del tape
        if d_vars:
            self.d_optimizer.apply_gradients(zip(d_grads, d_vars))
        self.g_optimizer.apply_gradients(zip(g_grads, g_vars))
        return self.update_trackers(terms, d_total, g_total)

    def reconstruction_terms(self, data):
        """The warm-up's per-sample terms from one G forward pass: (L1, moving-pixel L1, their
        weighted sum), the TF and the JAX warm-up steps' one objective."""
        c = self.config
        y = self.matched_conditions(data)
        video = y["video"]
        fake = self.generator(generator_inputs(y, c), training=True)
        l1 = losses.reconstruction_l1(video[:, 1:], fake)
        l1_motion = losses.motion_weighted_l1(video[:, 1:], fake, y["appearance"])
        return l1, l1_motion, c.w_l1 * l1 + c.w_l1_motion * l1_motion

    def reconstruction_step(self, data):
        """Warm-up step (not in the paper, config.reconstruction_warmup_steps): one G update on
        L_Gaux's reconstruction terms alone (L1 + moving-pixel L1), no discriminator."""
        import tensorflow as tf
        with tf.GradientTape() as tape:
            l1, l1_motion, g_total = self.reconstruction_terms(data)
            g_loss = tf.nn.compute_average_loss(g_total)
        g_vars = self.generator_variables()
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
        zeros = tf.zeros_like(g_total)
        terms = dict({name: zeros for name in LOSS_NAMES}, l1=l1, l1_motion=l1_motion)
        return self.update_trackers(terms, zeros, g_total)

    def update_trackers(self, terms, d_total, g_total):
        values = dict(terms, d_loss=d_total, g_loss=g_total)
        for name, tracker in self.trackers.items():
            tracker.update_state(values[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}
