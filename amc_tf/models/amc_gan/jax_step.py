"""AMCGAN's training steps under Keras's JAX backend: Algorithm 1 (`AMCGAN.train_step`) and the
reconstruction warm-up (`AMCGAN.reconstruction_step`) as pure jitted functions.

The TF steps use GradientTape and stateful variables; JAX needs the variables' values passed in
and out. Each step runs the model's own methods (`conditions`, `generate_cases`,
`compute_losses`, `total_losses`) inside a `keras.StatelessScope` that substitutes the values,
so the losses are the model's and only the bookkeeping lives here:

    step = AlgorithmOneStep(model)             # model: built + compiled AMCGAN, KERAS_BACKEND=jax
    state = step.initial_state()
    state, logs = step(state, with_draws(batch, model.config, rng))
    step.write_back(state)                      # the Keras variables hold the trained values

A batch is `AMCGAN.train_step`'s dict plus its own random draws (`with_draws`): z (`noise`) and
each clip's mismatched partners (`MISMATCH_KEYS`), which TensorFlow draws inside its step.
Needs JAX; import it only under the JAX backend.
"""

import jax
import keras
import numpy as np
from keras import ops

from amc_tf.models.amc_gan.model import MISMATCH_KEYS, draw_mismatch_indices


def with_draws(batch, config, rng):
    """The numpy batch with z ~ N(0, I) and the mismatch indices of `mismatch_indices`'s rule
    (subjects for y'_a, classes for y'_m) added where it has none. subject_id is dropped: only
    the TF step's own draw reads it."""
    out = {k: v for k, v in batch.items() if k != "subject_id"}
    size = np.shape(batch["motion_class"])[0]
    if "noise" not in out:
        out["noise"] = rng.standard_normal((size, config.noise_dim)).astype(np.float32)
    keys = {"index_mm_a": batch.get("subject_id", np.arange(size)),
            "index_mm_m": batch["motion_class"]}
    for name in MISMATCH_KEYS:
        if name not in out:
            out[name] = draw_mismatch_indices(keys[name], config.mismatch_mode, rng)
    return out


def _values(variables):
    # Copies: the step donates the state, and the variables keep their own buffers.
    return [ops.copy(v.value) for v in variables]


class _Step:
    """What both steps share: the model's variables in groups, state in / out of the scope."""

    def __init__(self, model):
        if keras.backend.backend() != "jax":
            raise RuntimeError(f"{type(self).__name__} runs under KERAS_BACKEND=jax, not "
                               f"{keras.backend.backend()}")
        self.model = model
        self.g_vars = list(model.generator_variables())
        self.d_vars = list(model.discriminator_variables())
        trained = {id(v) for v in self.g_vars + self.d_vars}
        # Moving statistics, and the trainables of a discriminator an ablation leaves out: read
        # by the forward pass, updated only by it.
        self.other_vars, seen = [], set(trained)
        for net in model.networks():
            for v in net.variables:
                if id(v) not in seen:
                    seen.add(id(v))
                    self.other_vars.append(v)
        # §3.4's label smoothing decays with the D optimizer's step count.
        self.d_iterations = [id(v) for v in model.d_optimizer.variables].index(
            id(model.d_optimizer.iterations))
        # The state's buffers are donated: each step updates them in place.
        self.jitted = jax.jit(self.step, donate_argnums=(0,))

    def initial_state(self):
        """(G's, D's and the other networks' variables, G's and D's optimizer variables)."""
        m = self.model
        return (_values(self.g_vars), _values(self.d_vars), _values(self.other_vars),
                _values(m.g_optimizer.variables), _values(m.d_optimizer.variables))

    def write_back(self, state):
        m = self.model
        groups = (self.g_vars, self.d_vars, self.other_vars, m.g_optimizer.variables,
                  m.d_optimizer.variables)
        for variables, values in zip(groups, state):
            for variable, value in zip(variables, values):
                variable.assign(value)

    def _run(self, fn, g_vals, d_vals, other_vals, d_opt_vals):
        """fn() inside a scope where every variable it reads has the given value; returns its
        result and the other variables' values after it (the BN moving statistics' updates)."""
        mapping = (list(zip(self.g_vars, g_vals)) + list(zip(self.d_vars, d_vals)) +
                   list(zip(self.other_vars, other_vals)) +
                   [(self.model.d_optimizer.iterations, d_opt_vals[self.d_iterations])])
        with keras.StatelessScope(state_mapping=mapping) as scope:
            out = fn()
        return out, [scope.get_current_value(v) for v in self.other_vars]

    def __call__(self, state, batch):
        return self.jitted(state, batch)

    def step(self, state, batch):
        raise NotImplementedError


class AlgorithmOneStep(_Step):
    """`AMCGAN.train_step`: one forward pass (lines 3-6, 12-13), the D gradient of the mean
    d_total over D's variables (line 11) and the G gradient of the mean g_total over G's
    (line 17) from it, one Adam update each. Returns (state, logs) with the step's mean of every
    LOSS_NAMES term."""

    def step(self, state, batch):
        m = self.model
        g_vals, d_vals, other_vals, g_opt, d_opt = state

        def objectives(trainables):
            def forward():
                y = m.conditions(batch)
                fakes = m.generate_cases(y, training=True)
                terms = m.compute_losses(y, fakes, training=True)
                return terms, m.total_losses(terms)
            (terms, (d_total, g_total)), other = self._run(forward, *trainables, other_vals,
                                                           d_opt)
            # tf.nn.compute_average_loss over one replica's batch: the mean.
            return (ops.mean(d_total), ops.mean(g_total)), (terms, d_total, g_total, other)

        # One forward pass, two backward passes, as the TF step's persistent tape.
        (d_loss, g_loss), backward, (terms, d_total, g_total, other_vals) = jax.vjp(
            objectives, (g_vals, d_vals), has_aux=True)
        one, zero = ops.ones_like(d_loss), ops.zeros_like(d_loss)
        (_, d_grads), = backward((one, zero))
        (g_grads, _), = backward((zero, one))
        if self.d_vars:
            d_vals, d_opt = m.d_optimizer.stateless_apply(d_opt, d_grads, d_vals)
        g_vals, g_opt = m.g_optimizer.stateless_apply(g_opt, g_grads, g_vals)
        logs = {name: ops.mean(value) for name, value in terms.items()}
        logs.update(d_loss=d_loss, g_loss=g_loss)
        return (g_vals, d_vals, other_vals, g_opt, d_opt), logs


class ReconstructionStep(_Step):
    """`AMCGAN.reconstruction_step`: one G update on L_Gaux's reconstruction terms (L1 +
    moving-pixel L1), no discriminator. Takes the same batches (their draws but z unused)."""

    def step(self, state, batch):
        m = self.model
        g_vals, d_vals, other_vals, g_opt, d_opt = state

        def objective(g_vals):
            (l1, l1_motion, g_total), other = self._run(
                lambda: m.reconstruction_terms(batch), g_vals, d_vals, other_vals, d_opt)
            return ops.mean(g_total), (l1, l1_motion, other)

        (g_loss, (l1, l1_motion, other_vals)), g_grads = jax.value_and_grad(
            objective, has_aux=True)(g_vals)
        g_vals, g_opt = m.g_optimizer.stateless_apply(g_opt, g_grads, g_vals)
        logs = {"g_loss": g_loss, "l1": ops.mean(l1), "l1_motion": ops.mean(l1_motion)}
        return (g_vals, d_vals, other_vals, g_opt, d_opt), logs
