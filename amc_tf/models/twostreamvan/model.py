"""TwoStreamVAN: the two streams and their discriminators trained by the paper's curriculum
(Sec. 3.3, appendix A, ../shared/PEERS.md "Training").

Every train step is one of three kinds, drawn from the step number (so every replica of a
tf.distribute strategy draws the same kind):

  content  (p_content)            the content VAN on one frame per clip (Eqs. 3-4):
           lambda_1 MSE(x̂, x) + lambda_2 KL(q(z_c|x,k) || N(0, I)) + w_content_gan * image-D
           terms on x̂ (posterior) and x_p (prior); updates E_c, G_c, D_I.
  easier   (a motion step, p_easier moving 0.9 -> 0.1): the next frame from the current one, no
           history; lambda_4 MSE + lambda_3 per-scale content-layer MSE + lambda_5 KL_m;
           updates E_m, G_m; the content stream is frozen.
  harder   (the other motion steps): the whole clip recurrently with scheduled sampling (the
           ground-truth frame fed with p_ground_truth moving 1 -> 0, else the previous
           prediction), Eqs. 5-7: the easier step's terms over all steps plus video-D GAN terms
           and AC-GAN class terms on the reconstruction v̂ and the prior-sampled video v_p;
           updates E_m, G_m, D_V.

lambda_5 ramps with the schedule (MUG 5 -> 25). D/G balancing (authors' code): a side whose
loss says it is winning too clearly skips its update — D when its mean BCE < target - margin,
G when its adversarial BCE > target + margin (global-batch means, the same on every replica).

Six Adams, one per network (lr 2e-4, betas (0.5, 0.999), weight decay 1e-5 added to the
gradient as PyTorch's Adam does). All six apply every step; an update gate (`GatedAdam.gate`)
leaves the networks the step kind does not train, and skipped sides, exactly as they were (their
Adam moments too). One optimizer's `iterations` is therefore the step number, checkpointed with
the model, so a resumed run continues the schedules where it stopped.
"""

import contextlib

import keras
import tensorflow as tf

from amc_tf import losses
from amc_tf.models.common import AdversarialModel
from amc_tf.models.twostreamvan.config import TwoStreamVANConfig
from amc_tf.models.twostreamvan.discriminators import ImageDiscriminator, VideoDiscriminator
from amc_tf.models.twostreamvan.generator import build_generator
from amc_tf.models.twostreamvan.streams import reparameterize

STEP_KINDS = ("content", "easier", "harder")
CONTENT, EASIER, HARDER = range(3)
# Per-sample terms every step kind returns (zeros where a kind has none).
TERMS = ("content_g", "content_d", "motion_g", "motion_d", "d_balance", "g_balance",
         "content_mse", "content_kl", "image_d", "image_g", "motion_mse", "feature_mse",
         "motion_kl", "video_d", "video_g", "video_class")
# Trackers: each term averaged over the steps of the kind that has it.
KIND_TERMS = {CONTENT: ("content_mse", "content_kl", "image_d", "image_g"),
              EASIER: ("motion_mse", "feature_mse", "motion_kl"),
              HARDER: ("motion_mse", "feature_mse", "motion_kl", "video_d", "video_g",
                       "video_class")}
TRACKERS = ("content_mse", "content_kl", "image_d", "image_g", "motion_mse", "feature_mse",
            "motion_kl", "video_d", "video_g", "video_class", "content_steps", "easier_steps",
            "harder_steps", "d_skipped", "g_skipped")


class GatedAdam(keras.optimizers.Adam):
    """Adam with L2 weight decay added to the gradient (PyTorch's `weight_decay`) and an update
    gate: while `gate` (a scalar bool tensor set before `apply_gradients`) is False the
    variables and the moments stay exactly as they are. `iterations` counts every step (the
    curriculum's clock); `applied` counts the updates made, Adam's bias-correction step."""

    def __init__(self, learning_rate, l2=0.0, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.l2 = l2
        self.gate = None

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.applied = self.add_variable((), initializer="zeros", dtype="int64",
                                         aggregation="only_first_replica", name="applied")

    def _keep(self):
        return tf.constant(1.0) if self.gate is None else tf.cast(self.gate, tf.float32)

    def apply(self, grads, trainable_variables=None):
        out = super().apply(grads, trainable_variables)
        self.applied.assign_add(tf.cast(self._keep(), tf.int64))
        return out

    def update_step(self, gradient, variable, learning_rate):
        """Adam's update (keras.optimizers.Adam, amsgrad off) scaled by the gate (0 or 1)."""
        dtype = variable.dtype
        keep = tf.cast(self._keep(), dtype)
        lr = tf.cast(learning_rate, dtype)
        gradient = tf.cast(gradient, dtype)
        if self.l2:
            gradient = gradient + tf.cast(self.l2, dtype) * tf.cast(variable, dtype)
        local_step = tf.cast(self.applied + 1, dtype)
        beta_1_power = tf.pow(tf.cast(self.beta_1, dtype), local_step)
        beta_2_power = tf.pow(tf.cast(self.beta_2, dtype), local_step)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        self.assign_add(m, keep * (gradient - m) * (1 - self.beta_1))
        self.assign_add(v, keep * (tf.square(gradient) - v) * (1 - self.beta_2))
        self.assign_sub(variable, keep * alpha * m / (tf.sqrt(v) + self.epsilon))


def linear_schedule(start, end, step, length):
    """start -> end linearly over `length` steps, then end."""
    progress = tf.clip_by_value(tf.cast(step, tf.float32) / float(max(length, 1)), 0.0, 1.0)
    return start + (end - start) * progress


def draw_step_kind(step, config):
    """The step kind of step `step` (int32 0 content / 1 easier / 2 harder): a stateless draw
    keyed on (curriculum_seed, step), so every replica draws the same."""
    c = config
    u = tf.random.stateless_uniform(
        [2], seed=tf.stack([tf.constant(c.curriculum_seed, tf.int64), tf.cast(step, tf.int64)]))
    p_easier = linear_schedule(c.p_easier_start, c.p_easier_end, step, c.schedule_length)
    return tf.where(u[0] < c.p_content, CONTENT, tf.where(u[1] < p_easier, EASIER, HARDER))


def _mse(a, b):
    """Mean squared error per sample (batch,)."""
    d = tf.cast(a, tf.float32) - tf.cast(b, tf.float32)
    return tf.reduce_mean(tf.reshape(tf.square(d), [tf.shape(d)[0], -1]), axis=1)


def _kl(mu, logvar):
    """KL(N(mu, e^logvar) || N(0, I)) per sample, summed over the latent."""
    return -0.5 * tf.reduce_sum(1.0 + logvar - tf.square(mu) - tf.exp(logvar), axis=-1)


@keras.saving.register_keras_serializable(package="amc_tf.twostreamvan")
class TwoStreamVAN(AdversarialModel):
    """The generator (both streams), D_I and D_V, with the curriculum as `train_step`.

    Batches are dicts (`amc_tf.inputs.clip_to_model_inputs`): video float32 (B, T, S, S, 3) in
    [-1, 1], motion_class int32 (B,); velocity, subject_id and noise are ignored (the motion
    codes come from the posterior, the prior codes from N(0, I)).
    """

    config_class = TwoStreamVANConfig
    OPTIMIZERS = ("content_encoder", "content_generator", "image_discriminator",
                  "motion_encoder", "motion_generator", "video_discriminator")

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        c = self.config = config
        self.generator = build_generator(config, name="generator")
        self.image_discriminator = ImageDiscriminator(
            frame_size=c.frame_size, filters=c.image_d_filters,
            leaky_relu_slope=c.leaky_relu_slope, name="image_discriminator")
        self.video_discriminator = VideoDiscriminator(
            num_frames=c.num_frames, frame_size=c.frame_size, num_classes=c.num_classes,
            filters=c.video_d_filters, leaky_relu_slope=c.leaky_relu_slope,
            name="video_discriminator")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in TRACKERS}

    # ------------------------------------------------------------------ setup
    def discriminators(self):
        return [self.image_discriminator, self.video_discriminator]

    def network(self, name):
        """One of OPTIMIZERS' networks by name."""
        if name.endswith("discriminator"):
            return getattr(self, name)
        return getattr(self.generator, name)

    def optimizers(self):
        return [getattr(self, f"{name}_optimizer") for name in self.OPTIMIZERS]

    def compile(self, jit_compile=None, **kwargs):
        """Six Adams, one per network (appendix A: lr 2e-4, betas (0.5, 0.999); weight decay
        1e-5), attributes `<network>_optimizer` so the checkpoint finds them."""
        c = self.config
        for name in self.OPTIMIZERS:
            setattr(self, f"{name}_optimizer", GatedAdam(
                c.learning_rate, l2=c.weight_decay, beta_1=c.adam_beta_1,
                beta_2=c.adam_beta_2, name=f"{name}_adam"))
        # keras.Model's compile, not AdversarialModel's (its two Adams are not this model's).
        keras.Model.compile(self, jit_compile=c.jit_compile if jit_compile is None
                            else jit_compile, **kwargs)

    def build_all(self):
        """Builds every network and all six optimizers (inside strategy.scope(), before fit)."""
        self.build()
        for name in self.OPTIMIZERS:
            getattr(self, f"{name}_optimizer").build(self.network(name).trainable_variables)

    @property
    def step_counter(self):
        """The train step number: every optimizer counts every step (gated or not)."""
        return self.content_encoder_optimizer.iterations

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    # ------------------------------------------------------------------ the three step kinds
    def _zeros(self, batch):
        return {name: tf.zeros([batch]) for name in TERMS}

    def content_terms(self, video, motion_class):
        """Eqs. 3-4 on one random frame of each clip."""
        c, g = self.config, self.generator
        batch = tf.shape(video)[0]
        index = tf.random.uniform([batch], 0, c.num_frames, tf.int32)
        frame = tf.gather(video, index, batch_dims=1)
        mu, logvar = g.content_encoder({"frame": frame, "motion_class": motion_class},
                                       training=True)
        z = reparameterize(mu, logvar, tf.random.normal(tf.shape(mu)))
        recon = g.content_generator({"content": z, "motion_class": motion_class}, training=True)
        prior = g.content_generator({"content": tf.random.normal(tf.shape(mu)),
                                     "motion_class": motion_class}, training=True)
        logits = self.image_discriminator(tf.concat([frame, recon, prior], axis=0),
                                          training=True)
        real, fake, fake_prior = tf.split(logits, 3, axis=0)
        d = losses.bce_with_logits(real, 1.0) + losses.bce_with_logits(fake, 0.0) + \
            losses.bce_with_logits(fake_prior, 0.0)
        g_adv = losses.bce_with_logits(fake, 1.0) + losses.bce_with_logits(fake_prior, 1.0)
        mse, kl = _mse(recon, frame), _kl(mu, logvar)
        out = self._zeros(batch)
        out.update(content_g=c.w_content_mse * mse + c.w_content_kl * kl + c.w_content_gan * g_adv,
                   content_d=c.w_content_gan * d, d_balance=d / 3.0, g_balance=g_adv / 2.0,
                   content_mse=mse, content_kl=kl, image_d=d, image_g=g_adv)
        return out

    def content_layers(self, frames, motion_class, training=True):
        """h_c^s of frames (the content stream alone, no motion): the motion VAE's targets."""
        g = self.generator
        vector = g.content_generator.content_vector(g.content_of(frames, motion_class),
                                                    motion_class)
        return [tf.stop_gradient(tf.cast(h, tf.float32))
                for h in g.content_generator.decode(vector)[1]]

    def motion_posterior(self, current, following, motion_class):
        """q(z_m | x_{t+1} - x_t, k): (z_m, mu, logvar)."""
        mu, logvar = self.generator.motion_encoder(
            {"difference": following - current, "motion_class": motion_class}, training=True)
        return reparameterize(mu, logvar, tf.random.normal(tf.shape(mu))), mu, logvar

    def easier_terms(self, video, motion_class, kl_weight):
        """The next frame from a random current frame, without history."""
        c, g = self.config, self.generator
        batch = tf.shape(video)[0]
        index = tf.random.uniform([batch], 0, c.num_frames - 1, tf.int32)
        current = tf.gather(video, index, batch_dims=1)
        following = tf.gather(video, index + 1, batch_dims=1)
        z, mu, logvar = self.motion_posterior(current, following, motion_class)
        state = g.motion_generator.initial_state(batch)
        predicted, _, _, fused, _ = g.next_frame(current, z, motion_class, state, training=True)
        targets = self.content_layers(following, motion_class)
        feature = tf.add_n([_mse(f, t) for f, t in zip(fused, targets)])
        mse, kl = _mse(predicted, following), _kl(mu, logvar)
        out = self._zeros(batch)
        out.update(motion_g=c.w_video_mse * mse + c.w_feature * feature + kl_weight * kl,
                   motion_mse=mse, feature_mse=feature, motion_kl=kl)
        return out

    def harder_terms(self, video, motion_class, kl_weight, p_ground_truth):
        """Eqs. 5-7: the whole clip recurrently, with scheduled sampling."""
        c, g = self.config, self.generator
        batch, steps = tf.shape(video)[0], c.num_frames - 1
        size = c.frame_size
        fold = lambda x: tf.reshape(x, [-1, size, size, 3])
        classes = tf.repeat(motion_class, steps)
        z, mu, logvar = self.motion_posterior(fold(video[:, :-1]), fold(video[:, 1:]), classes)
        z = tf.transpose(tf.reshape(z, [batch, steps, c.motion_dim]), [1, 0, 2])
        kl = tf.reduce_sum(tf.reshape(_kl(mu, logvar), [batch, steps]), axis=1)
        frames_tm = tf.transpose(video, [1, 0, 2, 3, 4])              # time-major
        use_truth = tf.random.uniform([steps, batch]) < p_ground_truth
        h, cell = g.motion_generator.initial_state(batch)

        # A tf.while_loop over the steps (the graph does not grow with T): frame t is the
        # ground truth where scheduled sampling says so (always at t = 0), else the prediction.
        def body(t, previous, h, cell, feature, out):
            truth = frames_tm[t]
            current = tf.where(use_truth[t][:, None, None, None] | tf.equal(t, 0), truth,
                               tf.stop_gradient(previous))
            predicted, (h, cell), _, fused, _ = g.next_frame(current, z[t], motion_class,
                                                             [h, cell], training=True)
            targets = self.content_layers(frames_tm[t + 1], motion_class)
            feature += tf.add_n([_mse(f, y) for f, y in zip(fused, targets)])
            return t + 1, predicted, h, cell, feature, out.write(t, predicted)

        out = tf.TensorArray(tf.float32, size=steps)
        _, _, _, _, feature, out = tf.while_loop(
            lambda t, *_: t < steps, body,
            (tf.constant(0), video[:, 0], h, cell, tf.zeros([batch]), out))
        recon = tf.concat([video[:, :1], tf.transpose(out.stack(), [1, 0, 2, 3, 4])], axis=1)
        prior = g.rollout(video[:, 0], motion_class,
                          tf.random.normal([batch, steps * c.motion_dim]), training=True)
        logits, class_logits = self.video_discriminator(tf.concat([video, recon, prior], 0),
                                                        training=True)
        real, fake, fake_prior = tf.split(logits, 3)
        ce = lambda x: losses.class_cross_entropy(x, motion_class, c.num_classes)
        cls_real, cls_fake, cls_prior = [ce(x) for x in tf.split(class_logits, 3)]
        d = losses.bce_with_logits(real, 1.0) + losses.bce_with_logits(fake, 0.0) + \
            losses.bce_with_logits(fake_prior, 0.0)
        g_adv = losses.bce_with_logits(fake, 1.0) + losses.bce_with_logits(fake_prior, 1.0)
        mse = _mse(recon[:, 1:], video[:, 1:])
        out = self._zeros(batch)
        out.update(
            motion_g=c.w_video_mse * mse + c.w_feature * feature + kl_weight * kl +
            c.w_video_gan * g_adv + c.w_class * (cls_fake + cls_prior),
            # Eq. 7: D_V minimises the class loss on the real and both generated videos.
            motion_d=c.w_video_gan * d + c.w_class * (cls_real + cls_fake + cls_prior),
            d_balance=d / 3.0, g_balance=g_adv / 2.0, motion_mse=mse, feature_mse=feature,
            motion_kl=kl, video_d=d, video_g=g_adv, video_class=cls_fake + cls_prior)
        return out

    # ------------------------------------------------------------------ the step
    # The networks each kind trains, and the objective (a TERMS entry) that trains each.
    TRAINS = {CONTENT: {"content_encoder": "content_g", "content_generator": "content_g",
                        "image_discriminator": "content_d"},
              EASIER: {"motion_encoder": "motion_g", "motion_generator": "motion_g"},
              HARDER: {"motion_encoder": "motion_g", "motion_generator": "motion_g",
                       "video_discriminator": "motion_d"}}

    def branch(self, kind, terms_fn):
        """One step kind: its per-sample terms and, for every network, the gradient of its
        objective averaged over the global batch (zeros for the networks it does not train).

        One tape per objective, each watching only the networks that objective trains: the
        motion stream's while loops are then watched by one tape alone, which records them as
        first-order ops. (One persistent tape, or two tapes watching everything, makes TF
        build every while loop's gradient eagerly for higher-order use: 3x the trace time.)"""
        trained = {objective: [n for n in self.OPTIMIZERS if self.TRAINS[kind].get(n) == objective]
                   for objective in sorted(set(self.TRAINS[kind].values()))}
        variables = {n: self.network(n).trainable_variables for n in self.OPTIMIZERS}
        with contextlib.ExitStack() as stack:
            tapes = {}
            for objective, names in trained.items():
                tapes[objective] = stack.enter_context(
                    tf.GradientTape(watch_accessed_variables=False))
                tapes[objective].watch([v.value for n in names for v in variables[n]])
            terms = terms_fn()
            objectives = {o: tf.nn.compute_average_loss(terms[o]) for o in trained}
        grads = {}
        for objective, names in trained.items():       # one backward pass per objective
            flat = tapes[objective].gradient(
                objectives[objective], [v for n in names for v in variables[n]],
                unconnected_gradients=tf.UnconnectedGradients.ZERO)
            for n in names:
                grads[n], flat = flat[:len(variables[n])], flat[len(variables[n]):]
        for name in self.OPTIMIZERS:
            if name not in grads:
                grads[name] = [tf.zeros_like(v) for v in variables[name]]
        return terms, grads

    # No Python control flow on tensors here (tf.switch_case and tf.while_loop are explicit):
    # autograph would only slow the trace.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        """One curriculum step (module doc); losses averaged over the global batch."""
        if isinstance(data, (tuple, list)):
            data = data[0]
        c = self.config
        video = tf.cast(data["video"], tf.float32)
        motion_class = tf.cast(data["motion_class"], tf.int32)
        step = self.step_counter
        kind = draw_step_kind(step, c)
        kl_weight = linear_schedule(c.w_motion_kl_start, c.w_motion_kl_end, step,
                                    c.schedule_length)
        p_truth = linear_schedule(c.p_ground_truth_start, c.p_ground_truth_end, step,
                                  c.schedule_length)
        # Each kind computes its terms and the gradients of the networks it trains inside its
        # own branch (zeros for the rest): one Case op, no gradient through it.
        terms, grads = tf.switch_case(kind, [
            lambda: self.branch(CONTENT, lambda: self.content_terms(video, motion_class)),
            lambda: self.branch(EASIER, lambda: self.easier_terms(video, motion_class,
                                                                  kl_weight)),
            lambda: self.branch(HARDER, lambda: self.harder_terms(video, motion_class, kl_weight,
                                                                  p_truth))])
        # D/G balancing on global-batch means (identical on every replica).
        replica = tf.distribute.get_replica_context()
        d_balance, g_balance = [replica.all_reduce(tf.distribute.ReduceOp.SUM,
                                                   tf.nn.compute_average_loss(terms[name]))
                                for name in ("d_balance", "g_balance")]
        skip_d = tf.constant(False)
        skip_g = tf.constant(False)
        if c.balance_margin is not None:
            adversarial = tf.not_equal(kind, EASIER)
            skip_d = adversarial & (d_balance < c.balance_target - c.balance_margin)
            skip_g = adversarial & (g_balance > c.balance_target + c.balance_margin)
        is_content, is_motion = tf.equal(kind, CONTENT), tf.not_equal(kind, CONTENT)
        gates = {"content_encoder": is_content & ~skip_g,
                 "content_generator": is_content & ~skip_g,
                 "image_discriminator": is_content & ~skip_d,
                 "motion_encoder": is_motion & ~skip_g,
                 "motion_generator": is_motion & ~skip_g,
                 "video_discriminator": tf.equal(kind, HARDER) & ~skip_d}
        for name in self.OPTIMIZERS:
            optimizer = getattr(self, f"{name}_optimizer")
            optimizer.gate = gates[name]
            optimizer.apply_gradients(zip(grads[name], self.network(name).trainable_variables))
            optimizer.gate = None
        return self.update_trackers(kind, terms, skip_d, skip_g)

    def update_trackers(self, kind, terms, skip_d, skip_g):
        t = self.trackers
        for k, names in KIND_TERMS.items():
            active = tf.cast(tf.equal(kind, k), tf.float32)
            t[f"{STEP_KINDS[k]}_steps"].update_state(active)
            for name in names:
                weight = active * tf.ones_like(terms[name])
                t[name].update_state(terms[name], sample_weight=weight)
        t["d_skipped"].update_state(tf.cast(skip_d, tf.float32))
        t["g_skipped"].update_state(tf.cast(skip_g, tf.float32))
        return {name: tracker.result() for name, tracker in t.items()}
