"""Model tests: appendix tensor sizes, Gram / ranking by hand, Table 2's gradient rule,
ablation switches, the B.3 input rule, saving, a paper-preset train step, the networks'
own hyper-parameters."""

import gc
import json
import os
import re
import tempfile
import types
import weakref

import numpy as np
import pytest
import tensorflow as tf

from amc_tf import losses
from amc_tf.models.amc_gan.config import ABLATIONS, AMCConfig, apply_ablation, get_preset
from amc_tf.models.amc_gan.discriminators import (AppearanceDiscriminator, MotionDiscriminator,
                                                  build_appearance_discriminator,
                                                  build_motion_discriminator)
from amc_tf.models.amc_gan.generator import (Generator, backward_warp, build_generator,
                                             motion_condition)
from amc_tf.models.amc_gan.model import AMCGAN, generator_inputs
from amc_tf.models.classifier import MotionClassifier, build_classifier, classifier_input
from amc_tf.models.convlstm import ConvLSTMCell
from amc_tf.models.saving import load_classifier, load_generator, save_model
from fixtures import check_network_hyper_parameters, random_model_batch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def conditions_of(batch):
    return {"appearance": batch["video"][:, 0], "motion_class": batch["motion_class"],
            "velocity": batch["velocity"], "noise": batch["noise"]}


# ---------------------------------------------------------------------- config
def test_presets_motion_dim_and_json_round_trip():
    assert get_preset("paper-mug").motion_dim == 28          # 6 + 2 x 11
    assert get_preset("paper-natops").motion_dim == 42       # 24 + 2 x 9
    assert get_preset("cpu").motion_dim == 30                # gestures: 12 + 2 x 9
    assert get_preset("paper-mug").noise_dim == 96 and get_preset("paper-natops").noise_dim == 128
    for name in ("paper-mug", "paper-natops", "cpu", "test"):
        c = get_preset(name, ablation="no-rank") if name == "test" else get_preset(name)
        assert AMCConfig.from_json(c.to_json()) == c
    mug = get_preset("paper-mug")
    assert (mug.w_gan, mug.w_rank, mug.w_ce, mug.w_mse, mug.w_l1, mug.w_dplus) == \
        (3.0, 100.0, 0.3, 300.0, 0.1, 1.0)                    # Table B, MUG
    with pytest.raises(ValueError):
        get_preset("paper-mug", num_classes=12)
    with pytest.raises(ValueError):
        get_preset("nope")


# ---------------------------------------------------------------------- ConvLSTM cell
def test_convlstm_cell_one_step():
    cell = ConvLSTMCell(5, 3)
    assert cell.state_size == [5, 5]
    x = tf.random.normal((2, 4, 4, 3))
    h0 = tf.zeros((2, 4, 4, 5))
    h, (h1, c1) = cell(x, [h0, h0])
    assert h.shape == (2, 4, 4, 5) and c1.shape == (2, 4, 4, 5)
    np.testing.assert_allclose(h.numpy(), h1.numpy())
    # The cell is stateless across calls: same inputs, same output.
    h2, _ = cell(x, [h0, h0])
    np.testing.assert_allclose(h.numpy(), h2.numpy())
    assert cell.kernel.shape == (3, 3, 3 + 5, 20)


# ---------------------------------------------------------------------- networks' arguments
# Each network with its own hyper-parameters (small, unlike any preset), and what it returns.
NETWORKS = {
    Generator: (dict(num_frames=8, frame_size=32, num_classes=3, num_keypoints=2, noise_dim=5,
                     encoder_filters=(2, 2, 4, 4, 4), decoder_filters=(4, 4, 2, 2), kernel_size=3,
                     leaky_relu_slope=0.1, sync_batchnorm=False, full_resolution_filters=2,
                     full_resolution_output="subpixel", appearance_mask=True,
                     appearance_warp=1.5, mask_upsample="bilinear", poolings=2,
                     motion_displacement=True, appearance_palette=3, gates_at_latent=True),
                lambda out: out.shape == (1, 7, 32, 32, 3)),
    AppearanceDiscriminator: (
        dict(num_frames=8, frame_size=32, frame_filters=(2, 4, 4), deconv_filters=4,
             head_filters=(4, 8), fc_units=4, kernel_size=4, leaky_relu_slope=0.1,
             sync_batchnorm=False, space_to_depth=2),
        lambda out: out["logits"].shape == (1, 6)),
    MotionDiscriminator: (
        dict(num_frames=8, frame_size=32, num_classes=3, num_keypoints=2,
             frame_filters=(2, 4, 4), head_filters=2, rf_filters=2, fc_units=4,
             class_logit_norm=True, kernel_size=4, lstm_kernel_size=3, leaky_relu_slope=0.1,
             sync_batchnorm=False, space_to_depth=2),
        lambda out: (out["logits"].shape, out["class_logits"].shape, out["velocity"].shape) ==
        ((1,), (1, 3), (1, 7, 4))),
    MotionClassifier: (dict(num_classes=3, num_frames=8, frame_size=16, filters=(2, 4, 4, 8),
                            strides=(2, 2, 2, 4), fc_units=4, dropout=0.5, leaky_relu_slope=0.1,
                            sync_batchnorm=False),
                       lambda out: out.shape == (1, 3)),
}


@pytest.mark.parametrize("network", list(NETWORKS), ids=lambda n: n.__name__)
def test_networks_take_their_own_hyper_parameters(network):
    check_network_hyper_parameters(network, *NETWORKS[network])


def test_no_network_reads_table4_flags():
    """Table 4's ablations are applied by AMCGAN / generator_inputs, not inside the layers."""
    layer_files = [os.path.join(ROOT, "amc_tf", "models", name) for name in
                   ("common.py", "convlstm.py", "classifier.py", "amc_gan/generator.py",
                    "amc_gan/discriminators.py")]
    for path in layer_files:
        with open(path) as f:
            assert not re.findall(r"\buse_\w+", f.read()), path


def test_builders_read_only_their_fields_and_old_files_still_load():
    c = get_preset("test")
    # build_classifier takes any family's config: only these fields are read.
    fields = ("num_classes", "num_frames", "frame_size", "leaky_relu_slope", "sync_batchnorm",
              "clf_filters", "clf_strides", "clf_fc_units", "clf_dropout")
    other_family = types.SimpleNamespace(**{f: getattr(c, f) for f in fields})
    assert build_classifier(other_family, name="clf").get_config() == \
        build_classifier(c, name="clf").get_config()
    # Files saved when the networks took the whole AMCConfig ({"config": AMCConfig dict}).
    for network, build in ((Generator, build_generator), (MotionClassifier, build_classifier)):
        old = {"name": "old", "trainable": True, "dtype": "float32", "config": c.to_dict()}
        assert network.from_config(old).get_config() == build(c, name="old").get_config()
    # ... saved before a field existed: it takes its default.
    before = {k: v for k, v in get_preset("cpu").to_dict().items() if k != "g_gates_at_latent"}
    old = {"name": "old", "trainable": True, "dtype": "float32", "config": before}
    assert Generator.from_config(old).gates_at_latent is False


# ---------------------------------------------------------------------- paper tensor sizes
@pytest.mark.parametrize("preset", ["paper-mug", "paper-natops"])
def test_paper_tensor_sizes(preset):
    c = get_preset(preset)
    batch = random_model_batch(c, 1)
    g = build_generator(c)
    out = g(conditions_of(batch))
    assert out.shape == (1, 31, 64, 64, 3)
    assert float(tf.reduce_max(tf.abs(out))) <= 1.0
    phi, skips = g.encode(batch["video"][:, 0])
    assert phi.shape == (1, 8, 8, 256)                                   # φ(y_a), A.1
    assert [s.shape[1:] for s in skips] == [(16, 16, 256), (32, 32, 128), (64, 64, 64)]
    h = tf.zeros((31, 8, 8, 256))
    assert g.skip_concat(h, phi, batch["noise"]).shape == (31, 8, 8, 512 + c.noise_dim)

    da = build_appearance_discriminator(c)
    out = da({"appearance": batch["video"][:, 0], "video": batch["video"]})
    assert out["logits"].shape == (1, 30)                                # one per x_{t-1:t+1}
    codes = da.encode_frames(batch["video"])
    assert codes[-1].shape == (1, 32, 8, 8, 256)
    assert [f.shape[2:] for f in out["features"]] == [(32, 32, 64), (16, 16, 128)]

    dm = build_motion_discriminator(c)
    out = dm({"video": batch["video"], "motion_class": batch["motion_class"]})
    assert out["logits"].shape == (1,)
    assert out["class_logits"].shape == (1, c.num_classes)              # ŷ^l_m ∈ R^c
    assert out["velocity"].shape == (1, 31, 2 * c.num_keypoints)        # ŷ^v_m ∈ R^2k per step
    assert float(tf.reduce_max(tf.abs(out["velocity"]))) <= 1.0          # tanh head
    assert [f.shape[1:] for f in out["features"]] == [(31, 32, 32, 64), (31, 16, 16, 128)]

    clf = build_classifier(c)
    assert clf.embed(batch["video"]).shape[1:] == (1, 2, 2, 512)         # φ(x) 2x2x512, B.3
    assert clf(batch["video"]).shape == (1, c.num_classes)


def test_paper_natops_full_train_step_on_cpu():
    c = get_preset("paper-natops").replace(batch_size=2, steps_per_epoch=1)
    gan = AMCGAN(c)
    gan.compile()
    gan.build_all()
    batch = random_model_batch(c, 2)
    before = [v.numpy().copy() for v in gan.generator.trainable_variables[:3]]
    logs = gan.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=1, epochs=1,
                   verbose=0).history
    assert all(np.isfinite(v[0]) for v in logs.values())
    after = [v.numpy() for v in gan.generator.trainable_variables[:3]]
    assert any(not np.allclose(a, b) for a, b in zip(before, after))
    assert int(gan.g_optimizer.iterations.numpy()) == 1 == int(gan.d_optimizer.iterations.numpy())


# ---------------------------------------------------------------------- Eq. (1)-(3) by hand
def test_gram_matrix_and_ranking_by_hand():
    # One video, T=2 frames of 1x2 pixels, C=1 channel: ω is N x M = (T C) x (H W) = 2 x 2.
    a = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)      # rows: frames, cols: pixels
    feats = tf.constant(a.reshape(1, 2, 1, 2, 1))
    gram = losses.gram_matrix(feats).numpy()[0]
    # ω^T ω / (N M): [[1+9, 2+12], [2+12, 4+16]] / 4
    np.testing.assert_allclose(gram, np.array([[10.0, 14.0], [14.0, 20.0]]) / 4.0, rtol=1e-6)
    # Two channels: ω rows are (t, c) pairs.
    f2 = np.zeros((1, 1, 1, 2, 2), np.float32)
    f2[0, 0, 0, :, 0] = [1.0, 0.0]
    f2[0, 0, 0, :, 1] = [2.0, 1.0]
    np.testing.assert_allclose(losses.gram_matrix(tf.constant(f2)).numpy()[0],
                               np.array([[5.0, 2.0], [2.0, 1.0]]) / 4.0, rtol=1e-6)

    # kind "channel": ω is C x (T H W); the same two-channel features give a C x C = 2 x 2
    # Gram of the filters' responses: [[1+0, 2+0], [2+0, 4+1]] / 4.
    np.testing.assert_allclose(losses.gram_matrix(tf.constant(f2), "channel").numpy()[0],
                               np.array([[1.0, 2.0], [2.0, 5.0]]) / 4.0, rtol=1e-6)
    # Over several frames and positions it sums every (t, y, x): C x C whatever T, H, W are.
    f3 = np.random.default_rng(0).normal(size=(2, 3, 2, 4, 5)).astype(np.float32)
    w = f3.reshape(2, -1, 5)
    np.testing.assert_allclose(losses.gram_matrix(tf.constant(f3), "channel").numpy(),
                               np.einsum("bmc,bmd->bcd", w, w) / (3 * 2 * 4 * 5), rtol=1e-5)
    with pytest.raises(ValueError, match="Gram matrix kind"):
        losses.gram_matrix(feats, "pixels")

    b = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    fb = tf.constant(b.reshape(1, 2, 1, 2, 1))
    gb = (b.T @ b) / 4.0
    d = losses.perceptual_distance(feats, fb).numpy()[0]
    np.testing.assert_allclose(d, np.sqrt(((a.T @ a / 4.0 - gb) ** 2).sum()), rtol=1e-5)

    # Eq. (3): Σ_j max(0, ρ - d⁻_j + d⁺_j)
    d_plus = [tf.constant([0.5, 0.1]), tf.constant([0.2, 0.0])]
    d_minus = [tf.constant([0.4, 0.3]), tf.constant([0.205, 1.0])]
    r = losses.ranking_loss(d_plus, d_minus, 0.01).numpy()
    expected = [max(0, 0.01 - 0.4 + 0.5) + max(0, 0.01 - 0.205 + 0.2),
                max(0, 0.01 - 0.3 + 0.1) + max(0, 0.01 - 1.0 + 0.0)]
    np.testing.assert_allclose(r, expected, atol=1e-7)


def test_memory_saving_forms_give_the_plain_values_and_gradients():
    """common.leaky_relu (gradient read from its output) and Generator.gate (skip + s·(u − skip),
    skip broadcast over the steps) equal ops.leaky_relu and s·u + (1 − s)·repeat(skip), values
    and gradients."""
    from keras import ops

    from amc_tf.models.common import leaky_relu
    x = tf.constant([[-2.0, -0.5, 0.0, 0.3, 4.0]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours, plain = leaky_relu(x, 0.2), ops.leaky_relu(x, 0.2)
    np.testing.assert_array_equal(ours.numpy(), plain.numpy())
    np.testing.assert_array_equal(tape.gradient(ours, x).numpy(), tape.gradient(plain, x).numpy())

    @tf.function
    def traced(x):            # where it matters: a traced step's gradient reads the output
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            ours, plain = leaky_relu(x, 0.2), ops.leaky_relu(x, 0.2)
        return ours, plain, tape.gradient(ours, x), tape.gradient(plain, x)
    ours, plain, ours_grad, plain_grad = traced(x)
    np.testing.assert_array_equal(ours.numpy(), plain.numpy())
    np.testing.assert_array_equal(ours_grad.numpy(), plain_grad.numpy())
    graph = traced.get_concrete_function(x).graph
    read = sorted(op.inputs[1].op.type for op in graph.get_operations()
                  if op.type == "LeakyReluGrad")
    assert read == ["LeakyRelu", "Placeholder"], read     # ours: y; ops.leaky_relu: x

    @tf.function
    def symbolic(x):          # tf.gradients: TF's own gradient, the same values
        return tf.gradients(leaky_relu(x, 0.2), x)[0]
    np.testing.assert_array_equal(symbolic(x).numpy(), plain_grad.numpy())

    # A function that uses it saves as a SavedModel (which traces the graph's gradients).
    module = tf.Module()
    module.f = tf.function(lambda x: leaky_relu(x, 0.2),
                           input_signature=[tf.TensorSpec([None, 5], tf.float32)])
    tf.saved_model.save(module, tempfile.mkdtemp())

    # Tracing leaves nothing in TF's global gradient registry, so a dropped function's graph is
    # freed (tf.custom_gradient's entry per call kept every traced graph alive: docs/testing.md).
    from tensorflow.python.framework import ops as tf_ops
    registry = tf_ops._gradient_registry._registry
    entries = len(registry)
    again = tf.function(traced.python_function)
    again(tf.zeros((3, 2)))
    assert len(registry) == entries
    graph = weakref.ref(again.get_concrete_function(tf.zeros((3, 2))).graph)
    del again
    gc.collect()
    assert graph() is None

    g = Generator(num_frames=4, frame_size=8, num_classes=2, num_keypoints=1, noise_dim=2,
                  encoder_filters=(4,) * 5, decoder_filters=(4,) * 4, kernel_size=3,
                  leaky_relu_slope=0.2, sync_batchnorm=False)
    rng = np.random.default_rng(0)
    s, u = (tf.constant(rng.uniform(size=(6, 5, 5, 3)), tf.float32) for _ in range(2))
    skip = tf.constant(rng.normal(size=(2, 5, 5, 3)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([s, u, skip])
        ours = g.gate(s, u, skip)
        plain = s * u + (1.0 - s) * tf.repeat(skip, 3, axis=0)
        weights = tf.constant(rng.normal(size=(6, 5, 5, 3)), tf.float32)
        ours_loss, plain_loss = (tf.reduce_sum(v * weights) for v in (ours, plain))
    np.testing.assert_allclose(ours.numpy(), plain.numpy(), rtol=1e-6, atol=1e-6)
    for a, b in zip(tape.gradient(ours_loss, [s, u, skip]),
                    tape.gradient(plain_loss, [s, u, skip])):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)


def test_convlstm_step_weights_give_the_plain_unroll():
    """An unroll that passes the weights from step to step (ConvLSTMCell.step_weights) has the
    plain unroll's outputs and weight gradients."""
    cell = ConvLSTMCell(4, 3)
    rng = np.random.default_rng(0)
    xs = tf.constant(rng.normal(size=(5, 2, 6, 6, 3)), tf.float32)      # (T, B, H, W, C)
    cell.build(xs.shape[1:])
    zeros = tf.zeros((2, 6, 6, 4))

    def unroll(chained):
        states, total = [zeros, zeros], 0.0
        weights = cell.step_weights(len(xs)) if chained else [None] * len(xs)
        for t in range(len(xs)):
            h, states = cell(xs[t], states, step_weights=weights[t])
            total += tf.reduce_sum(h * float(t + 1))
        return total
    results = []
    for chained in (False, True):
        with tf.GradientTape() as tape:
            total = unroll(chained)
        results.append((total, tape.gradient(total, [cell.kernel, cell.bias])))
    (plain, plain_grads), (ours, our_grads) = results
    np.testing.assert_allclose(ours.numpy(), plain.numpy(), rtol=1e-6)
    for a, b in zip(our_grads, plain_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_losses_by_hand():
    logits = tf.constant([[0.0, 2.0]])
    bce = losses.bce_with_logits(logits, 0.9).numpy()[0]
    sig = 1 / (1 + np.exp(-np.array([0.0, 2.0])))
    np.testing.assert_allclose(bce, np.mean(-(0.9 * np.log(sig) + 0.1 * np.log(1 - sig))),
                               rtol=1e-5)
    ce = losses.class_cross_entropy(tf.constant([[1.0, 0.0, 0.0]]), tf.constant([0]), 3, 0.3)
    p = np.exp([1.0, 0, 0]) / np.exp([1.0, 0, 0]).sum()
    np.testing.assert_allclose(ce.numpy()[0], -(0.8 * np.log(p[0]) + 0.1 * np.log(p[1]) +
                                                0.1 * np.log(p[2])), rtol=1e-5)


def test_motion_weighted_l1_by_hand():
    # 1 sample, 1 frame after y_a, 1x2 pixels, 1 channel: pixel 0 moved by 1.0, pixel 1 did not.
    appearance = tf.constant([[[[0.0], [0.5]]]])                      # (1, 1, 2, 1)
    video = tf.constant([[[[[1.0], [0.5]]]]])                         # (1, 1, 1, 2, 1)
    generated = tf.constant([[[[[0.25], [0.0]]]]])
    # weights m = (1, 0): only pixel 0's error 0.75 counts; plain L1 averages both (0.625).
    np.testing.assert_allclose(losses.motion_weighted_l1(video, generated, appearance), [0.75],
                               rtol=1e-5)
    np.testing.assert_allclose(losses.reconstruction_l1(video, generated), [0.625], rtol=1e-6)
    # Nothing moved: the weights are all zero and the term is 0, not NaN.
    still = tf.constant([[[[[0.0], [0.5]]]]])
    np.testing.assert_allclose(losses.motion_weighted_l1(still, generated, appearance), [0.0])


def test_cpu_options_outside_the_paper():
    """w_l1_motion enters G's objective only when set; dm_class_logit_norm drops A.3's BN +
    lrelu on the class logits (no class_bn2 weights). Both are off at the paper presets."""
    for name in ("paper-mug", "paper-natops"):
        c = get_preset(name)
        assert c.w_l1_motion == 0 and c.dm_class_logit_norm and c.g_aux_weight == 0
        assert c.g_full_resolution_filters == 0 and c.d_space_to_depth == 1   # A.1-A.3 exactly
    base = get_preset("test")
    on = base.replace(w_l1_motion=7.0, dm_class_logit_norm=False)
    gan, y, fakes, terms, d_total, g_total, tape = _terms_and_tape(on)
    on_total = gan.total_losses(dict(terms))[1]
    gan.config = base
    np.testing.assert_allclose(on_total - gan.total_losses(dict(terms))[1],
                               7.0 * terms["l1_motion"], rtol=1e-4, atol=1e-5)
    dm_on = build_motion_discriminator(on)
    dm_on.build()
    dm_base = build_motion_discriminator(base)
    dm_base.build()
    names = lambda dm: {w.path.split("/")[-2] for w in dm.weights}
    assert "class_bn2" in names(dm_base) and "class_bn2" not in names(dm_on)
    assert len(dm_base.weights) - len(dm_on.weights) == 4


def test_reconstruction_warmup_step_updates_generator_only():
    """Warm-up (cpu preset, not in the paper): G minimises w_l1·L1 + w_l1_motion·moving-pixel L1
    with no discriminator; D's weights and optimizer do not move."""
    c = get_preset("test").replace(w_l1_motion=7.0)
    gan = AMCGAN(c)
    gan.compile()
    gan.build_all()
    gan.reconstruction_warmup = True
    batch = random_model_batch(c, 4, 0)
    batch["noise"] = tf.random.normal([4, c.noise_dim], seed=1)
    g_before = [v.numpy() for v in gan.generator_variables()]
    d_before = [v.numpy() for v in gan.discriminator_variables()]
    inputs = {"appearance": batch["video"][:, 0], "velocity": batch["velocity"],
              "noise": batch["noise"], "motion_class": batch["motion_class"]}
    fake = gan.generator(inputs, training=True)         # BN in training mode, as in the step
    expected = c.w_l1 * losses.reconstruction_l1(batch["video"][:, 1:], fake) + \
        7.0 * losses.motion_weighted_l1(batch["video"][:, 1:], fake, batch["video"][:, 0])
    logs = gan.train_step(batch)
    np.testing.assert_allclose(float(logs["g_loss"]), float(tf.reduce_mean(expected)),
                               rtol=1e-4)
    assert float(logs["d_loss"]) == 0.0 and float(logs["g_adv"]) == 0.0
    assert int(gan.d_optimizer.iterations.numpy()) == 0
    assert int(gan.g_optimizer.iterations.numpy()) == 1
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(d_before, gan.discriminator_variables()))
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(g_before, gan.generator_variables()))
    for name in ("paper-mug", "paper-natops"):
        assert get_preset(name).reconstruction_warmup_steps == 0


# ---------------------------------------------------------------------- Table 2 gradients
def _terms_and_tape(config, seed=0):
    gan = AMCGAN(config)
    gan.compile()
    gan.build_all()
    y = gan.conditions(random_model_batch(config, 4, seed))
    with tf.GradientTape(persistent=True) as tape:
        fakes = gan.generate_cases(y)
        terms = gan.compute_losses(y, fakes)
        d_total, g_total = gan.total_losses(terms)
    return gan, y, fakes, terms, d_total, g_total, tape


def _nonzero(grads):
    return [g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads]


def test_table2_gradient_rule():
    c = get_preset("test").replace(mismatch_mode="pairs")
    gan, y, fakes, terms, d_total, g_total, tape = _terms_and_tape(c)
    g_vars = gan.generator_variables()
    d_vars = gan.discriminator_variables()
    # (x|y, y'): no gradient reaches G (it has no control over x|y); D learns it is fake.
    assert all(g is None for g in tape.gradient(terms["d_mismatched"], g_vars))
    assert any(_nonzero(tape.gradient(terms["d_mismatched"], d_vars)))
    # Rows 3-4: G is trained towards "real" through both generated cases.
    for key in ("fake", "fake_a", "fake_m"):
        assert all(_nonzero([tape.gradient(g_total, fakes[key])]))
    # The G objective labels fakes real: raising D's fake logits lowers g_adv; D labels them fake.
    logits = tf.Variable([[-1.0, 0.5]])
    with tf.GradientTape() as t2:
        g_adv = losses.bce_with_logits(logits, 1.0)
    assert float(tf.reduce_max(t2.gradient(g_adv, logits))) < 0
    # The D objective's gradient w.r.t. G's variables is only used through D's update: G's
    # update uses g_total only, which has gradients for every G variable that feeds the output.
    g_grads = tape.gradient(g_total, g_vars)
    assert sum(_nonzero(g_grads)) >= len(g_vars) - 2
    # Algorithm 1, line 7: the weights of the four cases.
    assert c.d_case_weights == (1.0, 0.5, 0.25, 0.25)
    # x̂|y'_a used y'_a and y_m; x̂|y_a,y'_m used y_a and y'_m (Table 1).
    idx = y["index_mm_a"].numpy()
    assert (idx == np.array([1, 0, 3, 2])).all()
    del tape


def test_mismatched_conditions_differ():
    from amc_tf.models.amc_gan.model import mismatch_indices
    keys = tf.constant([0, 0, 1, 1, 2, 0], tf.int32)
    for _ in range(5):
        idx = mismatch_indices(keys).numpy()
        assert (keys.numpy()[idx] != keys.numpy()).all()
    same = mismatch_indices(tf.constant([3, 3, 3])).numpy()
    assert (same != np.arange(3)).all()                # falls back to another clip


# ---------------------------------------------------------------------- ablations (Table 4)
def test_each_ablation_switch_changes_what_it_should():
    base = get_preset("test").replace(mismatch_mode="pairs")
    batch = random_model_batch(base, 4)
    other = dict(batch, video=tf.reverse(batch["video"], axis=[0]),
                 motion_class=(batch["motion_class"] + 1) % base.num_classes,
                 velocity=-batch["velocity"])

    def sensitivity(config):
        # The ablation is applied by the caller (generator_inputs), not inside the generator.
        g = build_generator(config)
        generate = lambda conditions: g(generator_inputs(conditions, config)).numpy()
        ref = generate(conditions_of(batch))
        app = generate(dict(conditions_of(batch), appearance=other["video"][:, 0]))
        mot = generate(dict(conditions_of(batch), motion_class=other["motion_class"],
                            velocity=other["velocity"]))
        return np.abs(app - ref).max(), np.abs(mot - ref).max()

    app, mot = sensitivity(base)
    assert app > 1e-4 and mot > 1e-4
    app, mot = sensitivity(apply_ablation(base, "no-ya"))
    assert app == 0 and mot > 1e-4
    app, mot = sensitivity(apply_ablation(base, "no-ym"))
    assert app > 1e-4 and mot == 0
    app, mot = sensitivity(apply_ablation(base, "no-y"))
    assert app == 0 and mot == 0

    def run(name):
        config = apply_ablation(base, name)
        gan, y, fakes, terms, d_total, g_total, tape = _terms_and_tape(config)
        del tape
        return config, gan, fakes, {k: v.numpy() for k, v in terms.items()}, \
            d_total.numpy(), g_total.numpy()

    c, gan, fakes, t, d, g = run("none")
    assert set(fakes) == {"fake", "fake_a", "fake_m"}
    assert (t["rank"] > 0).any() and (t["d_mismatched"] > 0).all()
    assert {id(x) for x in gan.discriminators()} == {id(gan.appearance_discriminator),
                                                     id(gan.motion_discriminator)}
    for name in ("no-ya", "no-da"):
        c, gan, *_ = run(name)
        assert gan.discriminators() == [gan.motion_discriminator]
    for name in ("no-ym", "no-dm"):
        c, gan, *_ = run(name)
        assert gan.discriminators() == [gan.appearance_discriminator]
    for name in ("no-y", "no-y-prime"):
        c, gan, fakes, t, d, g = run(name)
        assert set(fakes) == {"fake"}
        assert (t["rank"] == 0).all() and (t["d_mismatched"] == 0).all()
    # "No y": AMCGAN gives D_a / D_m a zero y_a code and D_m the zero one-hot.
    gan = AMCGAN(apply_ablation(base, "no-y"))
    gan.build()
    codes = gan.motion_discriminator.encode_frames(batch["video"])[-1]
    assert not np.any(gan.appearance_code(codes).numpy())
    score = lambda classes: gan.motion_score(codes, classes, False)["logits"].numpy()
    np.testing.assert_array_equal(score(batch["motion_class"]), score(other["motion_class"]))
    c, gan, fakes, t, d, g = run("no-daux")
    np.testing.assert_allclose(d, c.w_gan * t["d_adv"], rtol=1e-6)
    c, gan, fakes, t, d, g = run("no-gaux")
    np.testing.assert_allclose(g, c.w_gan * t["g_adv"] + c.w_rank * t["rank"], rtol=1e-5)
    c, gan, fakes, t, d, g = run("no-rank")
    np.testing.assert_allclose(g, c.w_gan * t["g_adv"] + c.w_l1 * t["l1"] +
                               c.w_dplus * t["d_plus"], rtol=1e-5)
    # The warm-up trains on L_Gaux alone: "no-gaux" drops it, the other rows keep it.
    cpu = get_preset("cpu", 12, 9)
    assert get_preset("cpu", 12, 9, ablation="no-gaux").reconstruction_warmup_steps == 0
    assert get_preset("cpu", 12, 9, ablation="no-rank").reconstruction_warmup_steps == \
        cpu.reconstruction_warmup_steps > 0
    with pytest.raises(ValueError, match="needs use_gaux"):
        cpu.replace(use_gaux=False)
    assert set(ABLATIONS) == {"none", "no-ya", "no-ym", "no-y", "no-y-prime", "no-da", "no-dm",
                              "no-daux", "no-gaux", "no-rank"}


# ---------------------------------------------------------------------- classifier (B.3)
def test_classifier_input_rule_t32():
    video = np.broadcast_to(np.arange(32, dtype=np.float32)[None, :, None, None, None],
                            (1, 32, 64, 64, 3))
    frames = classifier_input(tf.constant(video)).numpy()[0, :, 0, 0, 0]
    # Drop the first 4 frames, pad the first and the last remaining frame twice: 32 frames.
    assert frames.tolist() == [4, 4] + list(range(4, 32)) + [31, 31]


def test_classifier_input_rule_other_lengths():
    # T = 16 (the cpu preset: every 2nd of 32 frames): drop T/8 = 2, pad one frame each side.
    video = np.broadcast_to(np.arange(0, 32, 2, dtype=np.float32)[None, :, None, None, None],
                            (1, 16, 32, 32, 3))
    frames = classifier_input(tf.constant(video)).numpy()[0, :, 0, 0, 0]
    assert frames.tolist() == [4] + list(range(4, 32, 2)) + [30]


def test_classifier_round_trips(tmp_path):
    c = get_preset("test")
    clf = build_classifier(c)
    video = random_model_batch(c, 2)["video"]
    logits = clf(video)
    save_model(clf, str(tmp_path / "classifier.keras"))
    np.testing.assert_allclose(load_classifier(str(tmp_path))(video).numpy(), logits.numpy(),
                               atol=1e-6)


def test_classifier_takes_only_prepared_videos():
    """Frame stride and resizing are amc_tf.inputs' job: a clip of another length or of a size
    that is not a whole multiple of the judge's is an error, not silently subsampled."""
    c = get_preset("test")
    clf = build_classifier(c)
    clf.build()
    for shape in ((1, 2 * c.num_frames, c.frame_size, c.frame_size, 3),
                  (1, c.num_frames, 3 * c.frame_size // 2, 3 * c.frame_size // 2, 3)):
        with pytest.raises(ValueError, match="the classifier takes videos"):
            clf(tf.zeros(shape))


@pytest.mark.parametrize("family", ["amc-gan", "imaginator", "twostreamvan", "g3an"])
def test_every_family_config_refuses_a_bad_judge_field(family):
    """The judge's fields are checked when any family's config is made (FamilyConfig.validate),
    each error naming its field; a stride list one short is an error, not a shorter judge."""
    from amc_tf.models import get_family
    c = get_family(family).config("test", num_classes=3, num_keypoints=9)
    bad = {"clf_strides": ((2, 2, 2, 4)[:len(c.clf_filters) - 1], "one stride per conv3d"),
           "clf_filters": (c.clf_filters + (8,), "one stride per conv3d"),
           "clf_dropout": (1.0, "clf_dropout must be in"),
           "clf_learning_rate": (0.0, "clf_learning_rate must be > 0"),
           "clf_batch_size": (0, "clf_batch_size must be >= 1"),
           "clf_fc_units": (0, "clf_fc_units must be >= 1"),
           "clf_frame_size": (0, "clf_frame_size must be None"),
           "clf_weight_ema": (1.0, "clf_weight_ema must be 0")}
    for field, (value, message) in bad.items():
        with pytest.raises(ValueError, match=message):
            c.replace(**{field: value})
    for stride in ((2, 2), (2,), 0, (1, 2, 0)):
        with pytest.raises(ValueError, match="each of clf_strides"):
            c.replace(clf_strides=(stride,) + tuple(c.clf_strides[1:]))
    assert c.replace(clf_strides=((2, 4, 4),) + tuple(c.clf_strides[1:]), clf_weight_ema=0.99)


def test_judge_at_its_own_frame_size_sees_larger_videos_area_downscaled():
    """A 32x32 judge (the cpu one of the 32x32 families, clf_frame_size) reads 64x64 videos as
    inputs.resize_frames would prepare them (area), in one place, the classifier."""
    from amc_tf import inputs
    from amc_tf.models.family_config import judge_sizes
    c = get_preset("cpu").replace(**judge_sizes("cpu"))
    assert (c.frame_size, c.judge_frame_size) == (64, 32)
    clf = build_classifier(c)
    assert clf.frame_size == 32
    video = random_model_batch(c, 2)["video"]
    np.testing.assert_allclose(clf(video).numpy(),
                               clf(inputs.resize_frames(video, 32)).numpy(), atol=1e-5)
    assert get_preset("paper-natops").judge_frame_size == 64


def test_cpu_judge_of_64x64_models_sees_64x64_at_the_32x32_judges_sizes(tmp_path):
    """AMC-GAN's cpu judge reads its 64x64 frames whole: a first conv3d of spatial stride 4
    leaves every later layer at the 32x32 judge's sizes (family_config.JUDGE_SIZES_64); its
    config and file round-trip with the (time, height, width) stride."""
    from amc_tf.models.family_config import judge_sizes
    c = get_preset("cpu")
    small = c.replace(**judge_sizes("cpu"))
    assert (c.judge_frame_size, small.judge_frame_size) == (64, 32)
    assert c.clf_strides == ((2, 4, 4), 2, 2, 4) and c.clf_filters == small.clf_filters
    assert type(c).from_json(c.to_json()) == c
    video = random_model_batch(c, 2)["video"]
    sizes = []
    for config, frames in ((c, video), (small, video[:, :, ::2, ::2])):
        clf = build_classifier(config)
        x = frames
        shapes = []
        for conv in clf.convs:
            x = conv(x)
            shapes.append(tuple(x.shape))
        sizes.append(shapes)
    assert sizes[0] == sizes[1] and sizes[0][0] == (2, 8, 16, 16, 16)
    clf = build_classifier(c)
    logits = clf(video)
    assert logits.shape == (2, c.num_classes)
    save_model(clf, str(tmp_path / "classifier.keras"))
    np.testing.assert_allclose(load_classifier(str(tmp_path))(video).numpy(), logits.numpy(),
                               atol=1e-5)


# ---------------------------------------------------------------------- serving contract
def test_generator_traces_with_fixed_signature_and_round_trips(tmp_path):
    c = get_preset("test")
    g = build_generator(c)
    g.build()
    spec = {
        "appearance": tf.TensorSpec((None, c.frame_size, c.frame_size, 3), tf.float32),
        "motion_class": tf.TensorSpec((None,), tf.int32),
        "velocity": tf.TensorSpec((None, c.num_frames - 1, c.velocity_dim), tf.float32),
        "noise": tf.TensorSpec((None, c.noise_dim), tf.float32),
    }
    fn = tf.function(lambda x: g(x, training=False), input_signature=[spec])
    batch = random_model_batch(c, 3)
    out = fn(conditions_of(batch))
    assert out.shape == (3, c.num_frames - 1, c.frame_size, c.frame_size, 3)
    assert out.dtype == tf.float32
    path = save_model(g, str(tmp_path / "generator.keras"))
    g2 = load_generator(str(tmp_path))
    np.testing.assert_allclose(g2(conditions_of(batch)).numpy(), out.numpy(), atol=1e-6)
    assert json.loads(json.dumps(g2.get_config())) == json.loads(json.dumps(g.get_config()))
    assert path.endswith("generator.keras")


def test_generator_saved_with_keras_batch_norm_still_loads(tmp_path, monkeypatch):
    """A generator saved before amc_tf's two-pass BatchNormalization (with Keras's layer) loads
    with the same weights and outputs; new saves hold amc_tf's layer."""
    import keras
    from amc_tf.models import common
    from amc_tf.models.amc_gan import generator as generator_module
    c = get_preset("test")
    keras_bn = lambda synchronized, name=None: keras.layers.BatchNormalization(
        momentum=0.9, epsilon=1e-5, synchronized=synchronized, name=name)
    monkeypatch.setattr(generator_module, "batch_norm", keras_bn)
    old = build_generator(c)
    old.build()
    monkeypatch.undo()
    assert not any(isinstance(layer, common.BatchNormalization) for layer in old._flatten_layers())
    for v in old.weights:                  # statistics that differ from the initial ones
        if "moving_" in v.path:
            v.assign(np.random.default_rng(0).uniform(0.5, 1.5, v.shape).astype("float32"))
    batch = conditions_of(random_model_batch(c, 2))
    save_model(old, str(tmp_path / "old" / "generator.keras"))
    loaded = load_generator(str(tmp_path / "old"))
    np.testing.assert_allclose(loaded(batch).numpy(), old(batch).numpy(), atol=1e-6)
    new = build_generator(c)
    new.build()
    assert any(isinstance(layer, common.BatchNormalization) for layer in new._flatten_layers())
    save_model(new, str(tmp_path / "new" / "generator.keras"))
    assert any(isinstance(layer, common.BatchNormalization)
               for layer in load_generator(str(tmp_path / "new"))._flatten_layers())


def test_space_to_depth_by_hand():
    from amc_tf.models.common import space_to_depth
    frames = tf.random.uniform((3, 8, 8, 3))
    np.testing.assert_array_equal(space_to_depth(frames, 2).numpy(),
                                  tf.nn.space_to_depth(frames, 2).numpy())
    x = space_to_depth(frames, 2).numpy()
    # Channel (a * 2 + b) * 3 + c of position (i, j) is pixel (2i + a, 2j + b), channel c.
    assert x[1, 2, 3, (1 * 2 + 0) * 3 + 2] == frames.numpy()[1, 5, 6, 2]
    assert space_to_depth(frames, 1) is frames


def test_cpu_preset_makes_64x64_frames_from_its_networks():
    """The cpu preset's route to sharp frames (issue 14): A.1's networks at 32x32 inside one
    more level at 64x64 (the full-resolution skip of y_a, gated), D_a and D_m judging every
    pixel of the 64x64 frames as 32x32x12 (space_to_depth)."""
    c = get_preset("cpu")
    batch = random_model_batch(c, 1)
    g = build_generator(c)
    assert g(conditions_of(batch)).shape == (1, 15, 64, 64, 3)
    phi, skips = g.encode(batch["video"][:, 0])
    assert phi.shape == (1, 8, 8, 64)           # two poolings: the convLSTM at 8x8
    # Sub-pixel output: no 64x64 skip; the frame is 2x2 blocks of a 32x32 conv, y_a's mask
    # and flow one value per 32x32 position, upsampled.
    assert [s.shape[1:] for s in skips] == [(8, 8, 64), (16, 16, 48), (32, 32, 32)]
    assert g.full_resolution_conv.kernel.shape == (3, 3, 3, 16)
    # ... of y_a's 8 palette colours (g_appearance_palette).
    assert g.palette_select.kernel.shape == (3, 3, 16, 4 * 8) and g.mask_conv.kernel.shape[-1] == 1
    assert g.flow_conv.kernel.shape[-1] == 2 and g.mask_upsample == "bilinear"
    gated = build_generator(c.replace(g_full_resolution_output="gate", g_appearance_palette=0))
    _, skips = gated.encode(batch["video"][:, 0])
    assert skips[-1].shape[1:] == (64, 64, 16)
    da = build_appearance_discriminator(c)
    out = da({"appearance": batch["video"][:, 0], "video": batch["video"]})
    assert [f.shape[2:] for f in out["features"]] == [(16, 16, 16), (8, 8, 32)]
    assert da.frame_convs[0].kernel.shape == (4, 4, 12, 16)        # every pixel reaches it
    dm = build_motion_discriminator(c)
    out = dm({"video": batch["video"], "motion_class": batch["motion_class"]})
    assert [f.shape[2:] for f in out["features"]] == [(16, 16, 16), (8, 8, 32)]
    with pytest.raises(ValueError, match="g_full_resolution_filters must equal"):
        c.replace(g_full_resolution_filters=8, g_full_resolution_output="gate")
    c.replace(g_full_resolution_filters=8)          # sub-pixel output: any width
    with pytest.raises(ValueError, match="'subpixel' needs the full-resolution level"):
        c.replace(g_full_resolution_filters=0, frame_size=32)
    with pytest.raises(ValueError, match="unknown g_full_resolution_output 'nearest'"):
        c.replace(g_full_resolution_output="nearest")
    with pytest.raises(ValueError, match="space_to_depth block 3"):
        build_appearance_discriminator(c.replace(d_space_to_depth=3))


@pytest.mark.parametrize("output, mask, warp, mask_upsample, poolings, gram", [
    ("subpixel", True, 0.0, "subpixel", 3, "channel"),
    ("gate", False, 0.0, "subpixel", 3, "spatial"),
    ("subpixel", True, 4.0, "subpixel", 3, "spatial"),
    ("subpixel", True, 4.0, "bilinear", 3, "channel"),
    ("subpixel", True, 4.0, "bilinear", 2, "spatial")])
def test_full_resolution_level_trains_saves_and_loads(tmp_path, output, mask, warp,
                                                      mask_upsample, poolings, gram):
    """A train step (warm-up and Algorithm 1) of a tiny config with the cpu preset's
    structure (the earlier gated form, the warped y_a, its mask and flow from sub-pixel blocks
    or upsampled, two poolings), then the generator's .keras round trip. Both readings of
    Eq. (2) (config `gram`) rank and train."""
    c = get_preset("test", 4, 9).replace(g_full_resolution_filters=4, d_space_to_depth=2,
                                         g_full_resolution_output=output, g_appearance_mask=mask,
                                         g_appearance_warp=warp, g_mask_upsample=mask_upsample,
                                         g_poolings=poolings, gram=gram, batch_size=2)
    gan = AMCGAN(c)
    gan.compile()
    gan.build_all()
    batch = random_model_batch(c, 2)
    for warmup in (True, False):
        gan.reconstruction_warmup = warmup
        gan.make_train_function(force=True)
        logs = gan.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=1,
                       epochs=1, verbose=0).history
        assert all(np.isfinite(v[0]) for v in logs.values())
    assert np.isfinite(logs["rank"][0]) and logs["d_plus"][0] > 0     # Algorithm 1's terms
    with pytest.raises(ValueError, match="unknown gram"):
        c.replace(gram="pixels")
    out = gan.generator(conditions_of(batch))
    save_model(gan.generator, str(tmp_path / "generator.keras"))
    np.testing.assert_allclose(load_generator(str(tmp_path))(conditions_of(batch)).numpy(),
                               out.numpy(), atol=1e-6)


def test_appearance_mask_composes_frames_from_y_a():
    """g_appearance_mask: each frame is m·y_a + (1 − m)·x̂ per pixel. With the mask's bias
    saturated the frames are y_a exactly (m = 1) or the decoder's frames alone (m = 0)."""
    c = get_preset("test", 4, 9).replace(g_appearance_mask=True)
    g = build_generator(c)
    assert "appearance_mask" in g.get_config()
    batch = random_model_batch(c, 2)
    inputs = conditions_of(batch)
    g(inputs)
    assert g.mask_conv.kernel.shape == (3, 3, 4, 1)
    kernel, bias = g.mask_conv.get_weights()
    g.mask_conv.set_weights([np.zeros_like(kernel), np.full_like(bias, 50.0)])
    y_a = np.repeat(inputs["appearance"].numpy()[:, None], c.num_frames - 1, axis=1)
    np.testing.assert_allclose(g(inputs).numpy(), y_a, atol=1e-6)
    g.mask_conv.set_weights([np.zeros_like(kernel), np.full_like(bias, -50.0)])
    unmasked = build_generator(c.replace(g_appearance_mask=False))
    unmasked(inputs)
    unmasked.set_weights([w for w, v in zip(g.get_weights(), g.weights)
                          if "dec_mask" not in v.path])
    np.testing.assert_allclose(g(inputs).numpy(), unmasked(inputs).numpy(), atol=1e-6)


def test_backward_warp_reads_y_a_at_the_flow():
    """W(y_a, f): integer flows shift the frame (clamped at its border), a half-pixel flow
    averages two neighbours, and the flow gets the bilinear weights' gradient."""
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (2, 6, 5, 3)).astype("float32")
    flow = np.zeros((2, 3, 6, 5, 2), "float32")
    flow[:, 1, ..., 1] = 1.0           # step 1 reads one pixel to the right
    flow[:, 2, ..., 0] = -0.5          # step 2 halfway to the row above
    out = backward_warp(tf.constant(image), tf.constant(flow)).numpy()
    np.testing.assert_allclose(out[:, 0], image, atol=1e-6)
    np.testing.assert_allclose(out[:, 1, :, :-1], image[:, :, 1:], atol=1e-6)
    np.testing.assert_allclose(out[:, 1, :, -1], image[:, :, -1], atol=1e-6)
    np.testing.assert_allclose(out[:, 2, 1:], (image[:, 1:] + image[:, :-1]) / 2, atol=1e-6)
    np.testing.assert_allclose(out[:, 2, 0], image[:, 0], atol=1e-6)
    flow_var = tf.Variable(flow + 0.25)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(backward_warp(tf.constant(image), flow_var))
    grad = tape.gradient(loss, flow_var).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0


def test_backward_warp_reads_coordinates_in_float32_under_bfloat16():
    """Under mixed_bfloat16 the warp's coordinates stay float32 (bfloat16 holds 63.3 as 63.25)
    and its output has the image's dtype."""
    rng = np.random.default_rng(1)
    image = rng.uniform(-1, 1, (1, 64, 64, 3)).astype("float32")
    flow = np.zeros((1, 1, 64, 64, 2), "float32")
    flow[..., 1] = -0.3                     # every pixel reads 0.3 px to its left
    exact = backward_warp(tf.constant(image), tf.constant(flow)).numpy()
    out = backward_warp(tf.cast(image, tf.bfloat16), tf.cast(flow, tf.bfloat16))
    assert out.dtype == tf.bfloat16
    # Only the image's and the result's bfloat16 rounding (2^-8 relative) remain.
    np.testing.assert_allclose(tf.cast(out, tf.float32).numpy(), exact, atol=2 ** -6)


def assert_frames_are_y_a_shifted_by_the_flow(g, inputs):
    """With the mask saturated at 1 and the flow's bias at 50 (tanh = 1, the flow at
    g.appearance_warp = 2 px everywhere), every pixel reads (row + 2, col + 2) of y_a."""
    kernel, bias = g.mask_conv.get_weights()
    g.mask_conv.set_weights([np.zeros_like(kernel), np.full_like(bias, 50.0)])
    flow_kernel, flow_bias = g.flow_conv.get_weights()
    g.flow_conv.set_weights([flow_kernel, np.full_like(flow_bias, 50.0)])
    y_a = inputs["appearance"].numpy()
    out = g(inputs).numpy()
    assert g.appearance_warp == 2.0
    np.testing.assert_allclose(out[:, :, :-2, :-2], np.repeat(y_a[:, None, 2:, 2:],
                                                              out.shape[1], axis=1), atol=1e-5)


def test_appearance_warp_moves_y_a_before_the_mask():
    """g_appearance_warp: with the mask at 1 the frames are y_a warped by the flow; the flow
    starts at zero (frames as the plain mask's), and the warp needs the mask."""
    c = get_preset("test", 4, 9).replace(g_appearance_mask=True, g_appearance_warp=2.0)
    g = build_generator(c)
    assert g.get_config()["appearance_warp"] == 2.0
    batch = random_model_batch(c, 2)
    inputs = conditions_of(batch)
    plain = build_generator(c.replace(g_appearance_warp=0.0))
    plain(inputs)
    g(inputs)
    plain.set_weights([w for w, v in zip(g.get_weights(), g.weights) if "dec_flow" not in v.path])
    np.testing.assert_allclose(g(inputs).numpy(), plain(inputs).numpy(), atol=1e-6)
    assert_frames_are_y_a_shifted_by_the_flow(g, inputs)
    with pytest.raises(ValueError, match="needs g_appearance_mask"):
        c.replace(g_appearance_mask=False).validate()


def test_bilinear_mask_upsample_gives_one_mask_and_flow_value_per_half_resolution_position():
    """g_mask_upsample="bilinear": the mask and flow convs give one value per H/2 position
    (not a 2x2 block each), bilinearly upsampled before the sigmoid, so a mask raised on one
    H/2 column ramps across its block's edges where "subpixel" steps at them. With the mask
    saturated and a constant flow the frames are y_a shifted, as with "subpixel"."""
    c = get_preset("test", 4, 9).replace(g_full_resolution_filters=4, d_space_to_depth=2,
                                         g_full_resolution_output="subpixel",
                                         g_appearance_mask=True, g_appearance_warp=2.0,
                                         g_mask_upsample="bilinear")
    g = build_generator(c)
    assert g.get_config()["mask_upsample"] == "bilinear"
    batch = random_model_batch(c, 2)
    inputs = conditions_of(batch)
    g(inputs)
    assert g.mask_conv.kernel.shape[-1] == 1 and g.flow_conv.kernel.shape[-1] == 2
    blocks = build_generator(c.replace(g_mask_upsample="subpixel"))
    assert blocks.get_config()["mask_upsample"] == "subpixel"
    assert_frames_are_y_a_shifted_by_the_flow(g, inputs)
    # The mask from features whose channel 0 is +2 on the H/2 column 5 and -2 elsewhere (the
    # mask conv reads that channel alone): "bilinear" ramps across the block edges (the
    # block's two columns at sigmoid(1), its neighbours at sigmoid(-1)); "subpixel" keeps
    # the whole 2x2 block at sigmoid(2) beside blocks at sigmoid(-2).
    features = np.full((1, 16, 16, 4), -2.0, "float32")
    features[:, :, 5] = 2.0
    sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))
    for g, ramp in ((g, True), (blocks, False)):
        g(inputs)
        kernel = np.zeros(g.mask_conv.kernel.shape, "float32")
        kernel[1, 1, 0, :] = 1.0
        g.mask_conv.set_weights([kernel, np.zeros(kernel.shape[-1], "float32")])
        m = g.appearance_fields(tf.constant(features))[0].numpy()[0, 16, :, 0]
        inside, beside = (1.0, -1.0) if ramp else (2.0, -2.0)
        np.testing.assert_allclose(m[10:12], sigmoid(inside), atol=1e-5)
        np.testing.assert_allclose(m[[9, 12]], sigmoid(beside), atol=1e-5)
    with pytest.raises(ValueError, match="unknown g_mask_upsample 'nearest'"):
        c.replace(g_mask_upsample="nearest").validate()


def test_two_poolings_run_the_convlstm_on_a_grid_twice_as_fine():
    """g_poolings=2: the encoder pools after conv2 and conv3 only, so φ(y_a) and the convLSTM
    are at H/4 (of A.1's input); the decoder's first gating meets conv4's skip at that size
    without an upsample, and the frames keep their size. A.1's three poolings stay the
    default, and other counts are refused."""
    c = get_preset("test", 4, 9).replace(g_full_resolution_filters=4, d_space_to_depth=2,
                                         g_full_resolution_output="subpixel",
                                         g_appearance_mask=True, g_appearance_warp=2.0,
                                         g_mask_upsample="bilinear")
    assert c.g_poolings == 3 and c.latent_size == 2
    two = c.replace(g_poolings=2)
    assert two.latent_size == 4
    batch = random_model_batch(two, 2)
    inputs = conditions_of(batch)
    g = build_generator(two)
    assert g.get_config()["poolings"] == 2 and g.latent_size == 4
    phi, skips = g.encode(inputs["appearance"])
    assert phi.shape[1:3] == (4, 4)
    assert [s.shape[1] for s in skips] == [4, 8, 16]          # conv4, conv3, conv2
    assert g.stage_upsamples == [False, True, True]
    assert g(inputs).shape == (2, 7, 32, 32, 3)
    assert_frames_are_y_a_shifted_by_the_flow(g, inputs)
    three = build_generator(c)
    assert [s.shape[1] for s in three.encode(inputs["appearance"])[1]] == [4, 8, 16]
    assert three.encode(inputs["appearance"])[0].shape[1:3] == (2, 2)
    # The convLSTM's kernel does not depend on the grid: only its input size changes.
    three(inputs)
    assert three.cell.kernel.shape == g.cell.kernel.shape
    with pytest.raises(ValueError, match="g_poolings must be one of"):
        c.replace(g_poolings=1).validate()
    with pytest.raises(ValueError, match="frame_size 40 must be a multiple of 16"):
        c.replace(frame_size=40, g_poolings=3).validate()
    c.replace(frame_size=40, g_poolings=2, g_full_resolution_filters=0,
              g_full_resolution_output="gate", g_appearance_mask=False,
              g_appearance_warp=0.0, g_appearance_palette=0).validate()


def test_appearance_palette_draws_the_frames_from_y_a_colours():
    """g_appearance_palette: x̂ is a per-pixel softmax mixture of K colours, each a spatial
    softmax average of y_a's pixels, so a one-colour y_a gives frames of exactly its colour,
    and a two-colour y_a frames whose every pixel lies between its two colours."""
    c = get_preset("cpu", 4, 9).replace(g_appearance_palette=5, g_appearance_mask=False,
                                        g_appearance_warp=0.0)
    g = build_generator(c)
    batch = random_model_batch(c, 2)
    conditions = conditions_of(batch)
    colour = np.array([0.3, -0.6, 0.9], "float32")
    conditions["appearance"] = tf.constant(np.broadcast_to(colour, (2, 64, 64, 3)))
    frames = g(conditions).numpy()
    assert frames.shape == (2, 15, 64, 64, 3)
    np.testing.assert_allclose(frames, np.broadcast_to(colour, frames.shape), atol=1e-5)
    red, blue = np.array([1.0, -1.0, -1.0], "float32"), np.array([-1.0, -1.0, 1.0], "float32")
    two = np.broadcast_to(red, (2, 64, 64, 3)).copy()
    two[:, :, 32:] = blue
    conditions["appearance"] = tf.constant(two)
    frames = g(conditions).numpy()
    np.testing.assert_allclose(frames[..., 1], -1.0, atol=1e-5)        # green in neither
    np.testing.assert_allclose(frames[..., 0] + frames[..., 2], 0.0, atol=1e-5)
    assert g.palette_select.kernel.shape == (3, 3, 16, 4 * 5) and not hasattr(g, "output_conv")
    assert g.palette_attention.kernel.shape == (1, 1, 32, 5)       # conv2's 32x32 features
    # The preset's mask and warp compose y_a's pixels with the palette's frames.
    assert get_preset("cpu").g_appearance_palette == 8
    assert build_generator(get_preset("cpu"))(conditions).shape == (2, 15, 64, 64, 3)
    with pytest.raises(ValueError, match="g_appearance_palette .* needs g_full_resolution_output"):
        c.replace(g_full_resolution_output="gate")
    with pytest.raises(ValueError, match="g_appearance_palette .-1. must be >= 0"):
        c.replace(g_appearance_palette=-1)


def test_gates_at_latent_run_conv11_13_at_the_convlstm_size():
    """g_gates_at_latent: Conv11-13 see h_t at the convLSTM's size (8x8 at the cpu preset, not
    8/16/32), with the same kernels; the gates are upsampled after them, so the frames keep
    their size and G's weights their shapes."""
    c = get_preset("cpu", 4, 9)
    batch = conditions_of(random_model_batch(c, 2))
    seen = {}
    for at_latent in (False, True):
        g = build_generator(c.replace(g_gates_at_latent=at_latent))
        g(batch)                                             # built: the next call is the one seen
        sizes = []
        for conv in g.gate_convs:
            original = conv.call
            conv.call = lambda x, original=original: (sizes.append(x.shape[1]), original(x))[1]
        assert g(batch).shape == (2, 15, 64, 64, 3)
        seen[at_latent] = (sizes, [w.shape for w in g.weights])
    assert seen[False][0] == [8, 16, 32] and seen[True][0] == [8, 8, 8]
    assert seen[False][1] == seen[True][1]


def test_motion_displacement_adds_the_running_sum_of_the_velocities():
    """g_motion_displacement: y_m,t is [y^l_m, y^v_m,t, Σ_{s<=t} y^v_m,s] (q + 2k values); the
    generator's gated fc takes that size, and the frames do not change shape."""
    velocity = tf.constant(np.arange(2 * 3 * 4, dtype="float32").reshape(2, 3, 4))
    y_m = motion_condition(tf.constant([1, 0]), velocity, 5, displacement=True).numpy()
    assert y_m.shape == (2, 3, 5 + 4 + 4)
    np.testing.assert_array_equal(y_m[:, :, :5], np.eye(5)[[1, 0]][:, None].repeat(3, 1))
    np.testing.assert_array_equal(y_m[:, :, 5:9], velocity.numpy())
    np.testing.assert_array_equal(y_m[:, 2, 9:], velocity.numpy().sum(axis=1))
    np.testing.assert_array_equal(motion_condition(tf.constant([1, 0]), velocity, 5).numpy(),
                                  y_m[:, :, :9])
    c = get_preset("test", 4, 9).replace(g_motion_displacement=True)
    g = build_generator(c)
    batch = random_model_batch(c, 2)
    assert g(conditions_of(batch)).shape == (2, 7, 32, 32, 3)
    assert g.motion_fc.kernel.shape == (4 + 36, 4 + 36)
    assert g.get_config()["motion_displacement"] is True
    assert build_generator(c.replace(g_motion_displacement=False)).get_config()[
        "motion_displacement"] is False
