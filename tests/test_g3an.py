"""G3AN tests: the paper's sizes after every G3 block and in the discriminators (PEERS.md's
table), a 2-step z_m giving 20 frames, F-SA (identity at γ = 0, attention rows summing to 1, the
paper's equations), the spectrally normalised transposed convolution, the networks' own
hyper-parameters and saving, a train step (also under a 2-replica MirroredStrategy), training
with checkpoints and resume, and the no-appearance path: export, gRPC `generate` with class and
seed only, `amc-tf generate` without --image, the suite with SSIM / PSNR not applicable, and
compile-vertex --model g3an."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

import fixtures as testing
from amc_tf.models import get_family
from amc_tf.models.g3an.attention import FactorizedSelfAttention, SelfAttention
from amc_tf.models.g3an.config import G3anConfig, get_preset
from amc_tf.models.g3an.discriminators import VideoDiscriminator, build_video_discriminator
from amc_tf.models.image_discriminator import build_image_discriminator
from amc_tf.models.g3an.generator import G3Block, Generator, build_generator
from amc_tf.models.g3an.model import G3an
from amc_tf.models.spectral_norm import SpectralConv3DTranspose

FAMILY = get_family("g3an")
CLASS_NAMES = ["raise_both_arms", "raise_one_arm", "wave_one_arm"]
NUM_KEYPOINTS = 9


def conditions_of(batch):
    return {"motion_class": batch["motion_class"], "noise": batch["noise"]}


# ---------------------------------------------------------------------- config
def test_presets_and_json_round_trip():
    assert FAMILY.presets == ("paper", "cpu", "test")
    assert not FAMILY.uses_appearance and not FAMILY.uses_velocity
    assert FAMILY.signature_inputs() == ("motion_class", "seed")
    assert FAMILY.ablations == ("none", "unconditional", "no-fsa")
    paper = get_preset("paper")
    assert (paper.num_frames, paper.frame_size, paper.batch_size, paper.num_classes) == \
        (16, 64, 96, 6)
    assert (paper.appearance_noise_dim, paper.motion_noise_dim, paper.motion_steps,
            paper.noise_dim) == (128, 10, 1, 138)
    assert FAMILY.noise_shape(paper) == (138,)
    assert (paper.g_learning_rate, paper.d_learning_rate, paper.adam_beta_1,
            paper.adam_beta_2) == (2e-4, 2e-4, 0.5, 0.999)
    assert paper.conditional and paper.use_fsa and paper.fsa_after_block == 4
    # The other families' cpu / test sizes (shared judges).
    cpu, test = get_preset("cpu"), get_preset("test", num_classes=4)
    assert (cpu.num_frames, cpu.frame_size, cpu.frame_stride, cpu.num_classes) == (16, 32, 2, 12)
    assert cpu.g_learning_rate == cpu.d_learning_rate == 2e-4      # the paper's (docs/g3an.md)
    assert (test.num_frames, test.frame_size, test.frame_stride, test.num_classes) == (8, 32, 4, 4)
    imaginator = get_family("imaginator")
    for name in ("cpu", "test"):
        ours, theirs = FAMILY.config(name), imaginator.config(name)
        assert (ours.num_frames, ours.frame_size, ours.num_classes, ours.num_keypoints) == \
            (theirs.num_frames, theirs.frame_size, theirs.num_classes, theirs.num_keypoints)
        assert {k: v for k, v in ours.to_dict().items() if k.startswith("clf_")} == \
            {k: v for k, v in theirs.to_dict().items() if k.startswith("clf_")}
    for c in (paper, cpu, test, FAMILY.config("test", ablation="unconditional"),
              FAMILY.config("cpu", ablation="no-fsa")):
        assert G3anConfig.from_json(c.to_json()) == c
        assert FAMILY.config_from_json(c.to_json()) == c
    assert not FAMILY.config("test", ablation="unconditional").conditional
    assert not FAMILY.config("paper", ablation="no-fsa").use_fsa
    with pytest.raises(ValueError, match="fixes num_classes=6"):
        get_preset("paper", num_classes=12)
    with pytest.raises(ValueError):
        get_preset("paper-mug")
    with pytest.raises(ValueError, match="G3 blocks make"):
        cpu.replace(frame_size=64)
    with pytest.raises(ValueError, match="G3 blocks make"):
        paper.replace(motion_steps=2)              # 20 frames, the config says 16
    assert paper.replace(motion_steps=2, num_frames=20, source_frames=40).num_frames == 20
    with pytest.raises(ValueError, match="image_d_frames"):
        test.replace(image_d_frames=16)
    with pytest.raises(ValueError, match="ablation"):
        FAMILY.config("test", ablation="no-da")


# ---------------------------------------------------------------------- paper sizes
def test_paper_block_sizes_and_longer_videos():
    """PEERS.md's table (C x T x H x W there, (T, H, W, C) here) after every G3 block and F-SA,
    "about 23 M parameters", 16 + 4 (T_m - 1) frames, and the discriminators' sizes."""
    c = get_preset("paper")
    assert c.block_sizes() == [(4, 4), (8, 8), (16, 16), (16, 32), (16, 64)]
    assert [c.frames_for(steps) for steps in (1, 2, 3)] == [16, 20, 24]
    tf.keras.utils.set_random_seed(0)
    g = build_generator(c)
    batch = testing.random_model_batch(c, 1)
    out = g(conditions_of(batch), return_blocks=True)
    assert [tuple(b.shape[1:]) for b in out["blocks"]] == [
        (4, 4, 4, 1024), (8, 8, 8, 1024), (16, 16, 16, 512), (16, 32, 32, 256),
        (16, 64, 64, 128)]
    assert tuple(out["fsa"].shape[1:]) == (16, 32, 32, 256)               # F-SA on h_v
    assert tuple(out["video"].shape) == (1, 16, 64, 64, 3)                # to_rgb
    assert float(tf.reduce_max(tf.abs(out["video"]))) <= 1.0              # tanh
    # The streams' kernels (transposed: (t, h, w, out, in)); block 1's inputs: G_V [z_a, z_m]
    # 138, G_S z_a 128, G_T [z_m, one-hot] 16; later ones h_v 2 x width, h_s and h_t width.
    kernels = {"/".join(w.path.split("/")[-3:-1]): tuple(w.shape) for w in g.weights
               if w.path.endswith("kernel")}
    assert [kernels[f"g3_{i}/video_temporal"] for i in range(5)] == [
        (4, 1, 1, 512, 138), (4, 1, 1, 512, 1024), (4, 1, 1, 256, 1024), (1, 1, 1, 128, 512),
        (1, 1, 1, 64, 256)]
    assert kernels["g3_0/appearance_spatial"] == (1, 4, 4, 512, 128)
    assert kernels["g3_0/motion_temporal"] == (4, 1, 1, 512, 16)
    assert kernels["g3_4/video_spatial"] == (1, 4, 4, 64, 64)
    assert tuple(g.to_rgb.kernel.shape) == (1, 3, 3, 128, 3)
    params = g.count_params()
    print(f"paper generator: {params / 1e6:.2f} M parameters")
    assert 22.5e6 < params < 23.5e6                                       # "about 23 M"
    # Longer videos from the same networks: a 2-step z_m gives 20 frames, 3 steps 24.
    for steps, frames in ((2, 20), (3, 24)):
        noise = tf.random.normal((1, 128 + 10 * steps))
        video = g({"noise": noise, "motion_class": tf.constant([2])})
        assert tuple(video.shape) == (1, frames, 64, 64, 3)

    dv = build_video_discriminator(c)
    logits, stages = dv({"video": batch["video"], "motion_class": batch["motion_class"]},
                        return_stages=True)
    assert [tuple(s.shape[1:]) for s in stages] == [
        (13, 32, 32, 64), (10, 16, 16, 128), (7, 8, 8, 256), (4, 4, 4, 512)]   # T 16->4, H 64->4
    assert tuple(dv.temporal_convs[0].kernel.shape) == (4, 1, 1, 64 + 6, 64)  # + class map
    assert tuple(dv.out_spatial.kernel.shape) == (1, 4, 4, 512, 512)
    assert tuple(dv.out_temporal.kernel.shape) == (4, 1, 1, 512, 1)
    assert logits.shape == (1,)
    di = build_image_discriminator(c)
    assert di(batch["video"][:, 0]).shape == (1,)
    assert [tuple(conv.kernel.shape) for conv in di.convs] == [
        (4, 4, 3, 64), (4, 4, 64, 128), (4, 4, 128, 256), (4, 4, 256, 512)]


@pytest.mark.slow
def test_paper_full_train_step_and_export_on_cpu(tmp_path):
    from amc_tf.models.classifier import build_classifier
    from serving import export
    c = get_preset("paper").replace(batch_size=2, steps_per_epoch=1)
    model = FAMILY.build(c)
    before = [v.numpy().copy() for v in model.trainable_variables]
    logs = model.fit(tf.data.Dataset.from_tensors(testing.random_model_batch(c, 2)).repeat(),
                     steps_per_epoch=1, epochs=1, verbose=0).history
    assert all(np.isfinite(v[0]) for v in logs.values())
    after = [v.numpy() for v in model.trainable_variables]
    names = [v.path for v in model.trainable_variables]
    # All but F-SA's projections (no gradient at γ = 0, see the train-step test).
    assert all(not np.allclose(a, b) for a, b, n in zip(before, after, names)
               if "/fsa/" not in n or n.endswith("gamma"))
    assert int(model.g_optimizer.iterations.numpy()) == 1 == \
        int(model.d_optimizer.iterations.numpy())
    classifier = build_classifier(c)
    classifier.build()
    metadata = export.export_serving_model(FAMILY, FAMILY.generator(model), classifier, c,
                                           [str(i) for i in range(6)], str(tmp_path / "sm"))
    assert metadata["signature_inputs"] == {"generate": ["motion_class", "seed"]}
    video = tf.saved_model.load(str(tmp_path / "sm")).signatures["generate"](
        motion_class=tf.constant([1], tf.int32), seed=tf.constant([3], tf.int64))["video"]
    assert video.shape == (1, 16, 64, 64, 3)


# ---------------------------------------------------------------------- F-SA
def _numpy_attention(layer, x, axis):
    """Eqs. 1-4 in numpy from the layer's (normalised) 1x1x1 projections."""
    def project(conv):
        kernel = conv.normalized_kernel().numpy().reshape(x.shape[-1], -1)
        return x @ kernel + conv.bias.numpy()
    f, g, h = project(layer.f), project(layer.g), project(layer.h)
    if axis == "time":          # sequences over T at each (b, y, x)
        move = lambda a: np.moveaxis(a, 1, 3)                       # (B, H, W, T, c)
        back = lambda a: np.moveaxis(a, 3, 1)
    else:                       # sequences over H*W at each (b, t)
        move = lambda a: a.reshape(a.shape[0], a.shape[1], -1, a.shape[-1])
        back = lambda a: a.reshape(x.shape[:-1] + (a.shape[-1],))
    f, g, h = move(f), move(g), move(h)
    scores = np.einsum("...jc,...ic->...ji", g, f)                  # t_ij = f(x_i)^T g(x_j)
    a = np.exp(scores - scores.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)                                   # softmax over i
    return back(np.einsum("...ji,...ic->...jc", a, h)), a


@pytest.mark.parametrize("axis", ["time", "space"])
def test_self_attention_is_identity_at_gamma_zero_and_follows_the_paper(axis):
    tf.keras.utils.set_random_seed(1)
    x = tf.random.normal((2, 5, 3, 4, 16))                          # (B, T, H, W, C)
    layer = SelfAttention(axis, reduction=8)
    y = layer(x)
    assert float(layer.gamma.numpy()) == 0.0
    np.testing.assert_array_equal(y.numpy(), x.numpy())              # γ = 0: the identity
    assert tuple(layer.f.kernel.shape) == (1, 1, 1, 16, 2)          # C / 8
    assert tuple(layer.h.kernel.shape) == (1, 1, 1, 16, 16)
    weights = layer.attention(x).numpy()
    assert weights.shape == ((2 * 3 * 4, 5, 5) if axis == "time" else (2 * 5, 12, 12))
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)     # rows sum to 1 over i
    assert weights.min() >= 0.0
    layer.gamma.assign(0.7)
    attended, a = _numpy_attention(layer, x.numpy(), axis)
    np.testing.assert_allclose(weights, a.reshape(weights.shape), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(layer(x).numpy(), 0.7 * attended + x.numpy(), rtol=1e-4,
                               atol=1e-5)


def test_factorized_self_attention_is_time_then_space():
    tf.keras.utils.set_random_seed(2)
    x = tf.random.normal((1, 4, 3, 3, 8))
    fsa = FactorizedSelfAttention(reduction=8)
    np.testing.assert_array_equal(fsa(x).numpy(), x.numpy())        # both γ start at 0
    fsa.temporal.gamma.assign(0.5)
    fsa.spatial.gamma.assign(-0.3)
    expected = fsa.spatial(fsa.temporal(x))
    np.testing.assert_allclose(fsa(x).numpy(), expected.numpy(), atol=1e-6)
    assert not np.allclose(fsa(x).numpy(), fsa.temporal(fsa.spatial(x)).numpy(), atol=1e-4)
    # The time attention mixes only the T steps of one position: a change at one position
    # changes T-SA's output nowhere else.
    changed = x.numpy().copy()
    changed[0, :, 0, 0] += 1.0
    diff = np.abs(fsa.temporal(tf.constant(changed)).numpy() - fsa.temporal(x).numpy())
    assert diff[0, :, 0, 0].max() > 0 and np.delete(diff.reshape(4, 9, 8), 0, axis=1).max() == 0


# ---------------------------------------------------------------------- spectral norm
def test_spectral_transposed_conv_sizes_and_sigma_one():
    tf.keras.utils.set_random_seed(0)
    grow = SpectralConv3DTranspose(6, (4, 1, 1), padding="valid", use_bias=False)
    assert grow(tf.zeros((2, 1, 1, 1, 5))).shape == (2, 4, 1, 1, 6)     # k4 s1 p0: 1 -> 4
    up = SpectralConv3DTranspose(12, (1, 4, 4), strides=(1, 2, 2), padding="same")
    x = tf.random.normal((2, 3, 4, 4, 5))
    assert up(x).shape == (2, 3, 8, 8, 12) == up.compute_output_shape(x.shape)  # k4 s2 p1
    assert tuple(up.kernel.shape) == (1, 4, 4, 12, 5)
    up.kernel.assign(up.kernel * 7.0)
    for _ in range(100):
        up(x, training=True)
    kernel = up.normalized_kernel().numpy()
    # σ of the kernel with one column per output channel.
    sigma = np.linalg.svd(np.swapaxes(kernel, -1, -2).reshape(-1, 12), compute_uv=False)[0]
    assert abs(sigma - 1.0) < 1e-2, sigma


# ---------------------------------------------------------------------- networks
NETWORKS = {
    Generator: (dict(num_classes=3, appearance_noise_dim=5, motion_noise_dim=2,
                     filters=(4, 4, 2), spatial_kernels=(4, 4, 1), spatial_strides=(1, 2, 1),
                     temporal_kernels=(4, 4, 1), temporal_strides=(1, 2, 1),
                     fsa_after_block=2, fsa_reduction=2, rgb_kernel_size=3,
                     sync_batchnorm=False, power_iterations=1),
                lambda out: out.shape == (1, 8, 8, 8, 3)),
    VideoDiscriminator: (dict(num_frames=8, frame_size=16, num_classes=3, filters=(2, 4),
                              temporal_kernels=(3, 2), kernel_size=4, leaky_relu_slope=0.1,
                              power_iterations=2),
                         lambda out: out.shape == (1,)),
    # D_I is the shared amc_tf/models/image_discriminator.py, checked in test_imaginator.py.
}


@pytest.mark.parametrize("network", list(NETWORKS), ids=lambda n: n.__name__)
def test_networks_take_their_own_hyper_parameters(network):
    testing.check_network_hyper_parameters(network, *NETWORKS[network])


def test_layer_and_model_configs_round_trip():
    layers = (SpectralConv3DTranspose(3, (1, 4, 4), strides=(1, 2, 2), padding="same"),
              SelfAttention("space", reduction=4, power_iterations=2),
              FactorizedSelfAttention(reduction=2),
              G3Block(4, 4, 2, 1, 1, sync_batchnorm=False, power_iterations=1))
    for layer in layers:
        config = json.loads(json.dumps(layer.get_config()))
        assert type(layer).from_config(config).get_config() == layer.get_config()
    with pytest.raises(ValueError, match="axis"):
        SelfAttention("channels")
    c = get_preset("test", num_classes=4)
    model = G3an(c, name="m")
    again = G3an.from_config(json.loads(json.dumps(model.get_config())))
    assert again.config == c and again.name == "m"


def test_generator_saves_loads_and_generates_from_class_and_noise(tmp_path):
    from amc_tf.models.saving import load_generator, save_model
    c = get_preset("test", num_classes=4)
    tf.keras.utils.set_random_seed(0)
    model = FAMILY.build(c)
    batch = testing.random_model_batch(c, 4)
    tf.function(model.train_step)(batch)                      # BN statistics away from init
    g = FAMILY.generator(model)
    conditions = conditions_of(batch)
    path = save_model(g, str(tmp_path / "generator.keras"))
    loaded = load_generator(str(tmp_path), "g3an")
    # Without family= (AMC-GAN's default) the file is named with the family it needs.
    with pytest.raises(ValueError, match=r"holds a g3an generator.*family='g3an'"):
        load_generator(path)
    assert type(loaded) is Generator and loaded.get_config() == g.get_config()
    np.testing.assert_allclose(loaded(conditions).numpy(), g(conditions).numpy(), atol=1e-6)
    assert FAMILY.load_generator(path).get_config() == g.get_config()
    # The contract without an appearance: G's whole video; an appearance given is not used.
    video = FAMILY.generate(loaded, conditions, c).numpy()
    assert video.shape == (4, 8, 32, 32, 3) and np.abs(video).max() <= 1.0
    with_y_a = dict(conditions, appearance=batch["video"][:, 0], velocity=batch["velocity"])
    np.testing.assert_array_equal(FAMILY.generate(loaded, with_y_a, c).numpy(), video)
    # The class matters (one-hot into G_T); unconditional: it does not.
    other = dict(conditions, motion_class=(batch["motion_class"] + 1) % 4)
    assert np.abs(FAMILY.generate(loaded, other, c).numpy() - video).mean() > 1e-4
    free = FAMILY.build(FAMILY.config("test", num_classes=4, ablation="unconditional"))
    np.testing.assert_array_equal(FAMILY.generate(free.generator, other, c).numpy(),
                                  FAMILY.generate(free.generator, conditions, c).numpy())
    assert free.video_discriminator.num_classes == 0
    assert FAMILY.build(c.replace(use_fsa=False)).generator.fsa is None


# ---------------------------------------------------------------------- training
def test_train_step_updates_both_sides_and_the_spectral_norms():
    c = get_preset("test", num_classes=4)
    tf.keras.utils.set_random_seed(0)
    model = FAMILY.build(c)
    before = [v.numpy().copy() for v in model.trainable_variables]
    u = [v.numpy().copy() for v in model.non_trainable_variables if v.path.endswith("/u")]
    step = tf.function(model.train_step)
    batch = testing.random_model_batch(c, 4)
    logs = step(batch)
    assert set(logs) == set(model.trackers) and all(np.isfinite(float(v))
                                                    for v in logs.values())
    after = [v.numpy() for v in model.trainable_variables]
    names = [v.path for v in model.trainable_variables]
    still = {n for n, a, b in zip(names, before, after) if np.allclose(a, b)}
    # Everything trains but F-SA's projections f, g, h: at γ = 0 their gradient is γ times
    # something, 0. γ itself moves (dL/dγ = <attention output, dL/dy>), and they follow.
    assert still == {n for n in names if "/fsa/" in n and not n.endswith("gamma")}, still
    assert len(still) == 12
    step(batch)
    # ... but two biases with no gradient ever: f's (the softmax over i is invariant to the
    # g(x_j)^T b_f it adds to row j) and h's (a constant per channel, which the next block's
    # pointwise transposed convolution and BN remove).
    again = {v.path for b, v in zip(before, model.trainable_variables)
             if np.allclose(b, v.numpy())}
    assert again == {f"g3an/generator/fsa/{axis}/{conv}/bias" for axis in ("temporal", "spatial")
                     for conv in ("f", "h")}, again
    u_after = [v.numpy() for v in model.non_trainable_variables if v.path.endswith("/u")]
    assert len(u) > 20 and all(not np.allclose(a, b) for a, b in zip(u, u_after))
    assert int(model.g_optimizer.iterations.numpy()) == 2 == \
        int(model.d_optimizer.iterations.numpy())


def test_tiny_model_discriminator_learns_a_fixed_batch():
    """D step then G step: on one fixed batch of real clips the discriminators learn to accept
    them (real accuracy up, D loss down) while G's updates keep its losses finite."""
    c = get_preset("test", num_classes=4, num_keypoints=3).replace(d_learning_rate=1e-3)
    clips = testing.make_clips(4, 4, 3, seed=0, num_frames=c.num_frames, size=c.frame_size)
    batch = {"video": tf.constant(clips["video"].astype(np.float32) / 127.5 - 1.0),
             "velocity": tf.constant(clips["velocity"]),
             "motion_class": tf.constant(clips["motion_class"].astype(np.int32)),
             "subject_id": tf.constant(np.arange(4)),
             "noise": tf.random.stateless_normal((4, c.noise_dim), seed=(0, 0))}
    tf.keras.utils.set_random_seed(0)
    model = FAMILY.build(c)
    step = tf.function(model.train_step)
    first = {k: float(v) for k, v in step(batch).items()}
    for tracker in model.trackers.values():
        tracker.reset_state()
    for _ in range(40):
        logs = step(batch)
    last = {k: float(v) for k, v in logs.items()}
    assert all(np.isfinite(v) for v in last.values())
    assert last["d_loss"] < 0.8 * first["d_loss"], (first, last)


def test_train_model_checkpoints_and_resumes(tmp_path, capsys):
    model, _ = testing.train_and_resume(FAMILY, str(tmp_path), capsys)
    assert int(model.g_optimizer.iterations.numpy()) == 15 == \
        int(model.d_optimizer.iterations.numpy())


# ---------------------------------------------------------------------- serving
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from amc_tf.models.classifier import build_classifier
    from serving import export
    c = FAMILY.config("test", num_classes=len(CLASS_NAMES), num_keypoints=NUM_KEYPOINTS)
    tf.keras.utils.set_random_seed(0)
    model = FAMILY.build(c)
    classifier = build_classifier(c)
    classifier.build()
    export_dir = str(tmp_path_factory.mktemp("g3an_export") / "saved_model")
    metadata = export.export_serving_model(FAMILY, FAMILY.generator(model), classifier, c,
                                           CLASS_NAMES, export_dir, velocity_bank=None)
    return export_dir, metadata


@pytest.fixture(scope="module")
def address(exported, tmp_path_factory):
    from serving import server
    base = tmp_path_factory.mktemp("g3an_serving") / "g3an"
    shutil.copytree(exported[0], base / "1")
    srv = server.start(str(base), model_name="g3an", port=0, rest_port=None)
    yield f"127.0.0.1:{srv.port}"
    srv.stop(grace=2)


def _class_dependent(video):
    diffs = [np.abs(video[i].astype(int) - video[j].astype(int)).mean()
             for i, j in ((0, 1), (0, 2), (1, 2))]
    return min(diffs) > 0.0


def test_export_takes_class_and_seed_only(exported):
    export_dir, metadata = exported
    assert metadata["model"] == "g3an"
    assert metadata["signature_inputs"] == {"generate": ["motion_class", "seed"]}
    assert "ssim" not in metadata["evaluation_outputs"]
    assert "psnr" not in metadata["evaluation_outputs"]
    loaded = tf.saved_model.load(export_dir)
    assert "generate_with_velocity" not in loaded.signatures
    generate = loaded.signatures["generate"]
    assert sorted(generate.structured_input_signature[1]) == ["motion_class", "seed"]
    seed = tf.constant([7, 7, 7], tf.int64)
    video = generate(motion_class=tf.constant([0, 1, 2], tf.int32), seed=seed)["video"].numpy()
    assert video.shape == (3, 8, 64, 64, 3) and video.dtype == np.uint8
    assert _class_dependent(video)
    again = generate(motion_class=tf.constant([0, 1, 2], tf.int32), seed=seed)["video"].numpy()
    np.testing.assert_array_equal(video, again)                          # same seed, same video
    other = generate(motion_class=tf.constant([0], tf.int32),
                     seed=tf.constant([8], tf.int64))["video"].numpy()
    assert np.abs(other[0].astype(int) - video[0].astype(int)).mean() > 0   # the seed matters


def test_grpc_generate_with_class_and_seed_only(address, exported, tmp_path, capsys):
    from amc_app import cli
    from serving import client
    metadata = client.get_metadata(address, model_name="g3an")
    assert metadata["signature_inputs"]["generate"] == ["motion_class", "seed"]
    videos = [client.generate_video(address, None, name, seed=5, model_name="g3an")[0]
              for name in CLASS_NAMES]
    assert all(v.shape == (8, 64, 64, 3) for v in videos)
    assert _class_dependent(np.stack(videos))
    direct = client.predict(address, {"motion_class": np.array([1], np.int32),
                                      "seed": np.array([5], np.int64)}, model_name="g3an")
    np.testing.assert_array_equal(direct["video"][0], videos[1])
    # `amc-tf generate` without --image; with one, a clear error.
    out = tmp_path / "wave.gif"
    assert cli.main(["generate", "--server", address, "--model-name", "g3an", "--motion",
                     "wave_one_arm", "--seed", "5", "--out", str(out)]) == 0
    assert out.exists() and "wave_one_arm" in capsys.readouterr().out
    png = tmp_path / "face.png"
    from PIL import Image
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(png)
    assert cli.main(["generate", "--server", address, "--model-name", "g3an", "--image",
                     str(png), "--motion", "0", "--out", str(tmp_path / "x.gif")]) == 2
    assert "takes no appearance: drop --image" in capsys.readouterr().err


def test_evaluation_reports_ssim_psnr_not_applicable(exported, tmp_path):
    from amc_tf.metrics import suite
    from serving import evaluate
    data = tmp_path / "data"
    testing.write_clips(str(data), 5, len(CLASS_NAMES), NUM_KEYPOINTS, seed=2, split="eval")
    with open(data / "summary.json", "w") as f:
        json.dump({"dataset": "gestures", "class_names": CLASS_NAMES}, f)
    report = evaluate.evaluate(str(data), saved_model_dir=exported[0], batch_size=3)
    assert {suite.SSIM, suite.PSNR} <= set(report["not_applicable"])
    overall = report["table"]["overall"]
    assert suite.SSIM not in overall and 0.0 <= overall[suite.ACCURACY] <= 1.0
    text = evaluate.format_report(report)
    ssim_line = next(line for line in text.splitlines() if line.startswith(suite.SSIM))
    assert suite.NOT_APPLICABLE in ssim_line


# ---------------------------------------------------------------------- tf.distribute
@pytest.mark.slow
@pytest.mark.two_replicas("gan_family", family="g3an", image_d_frames=8)
def test_mirrored_two_replicas_match_one_replica(two_replicas):
    """One D-then-G step, batch 4, two replicas against one from the same weights: the same
    update (relative gap < 1e-3) and the same spectral norm vectors (tests/two_replicas.py).
    D_I on every frame: the per-replica random frame draw does not change the loss."""
    assert two_replicas["overall"] < 1e-3, two_replicas
    assert two_replicas["spectral_u"] > 0
