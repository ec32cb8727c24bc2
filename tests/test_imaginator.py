"""ImaGINator tests: the paper's tensor sizes (Tables 1-3, ../shared/PEERS.md), spectral
normalisation (σ ≈ 1, σ in the gradient), the networks' own hyper-parameters and saving, a paper
train step on CPU, overfitting a tiny batch, training with checkpoints and resume, the serving
export, and a 2-replica MirroredStrategy step."""

import json

import numpy as np
import pytest
import tensorflow as tf

import fixtures as testing
from amc_tf.models import get_family
from amc_tf.models.imaginator.config import ImaginatorConfig, get_preset
from amc_tf.models.imaginator.discriminators import VideoDiscriminator, build_video_discriminator
from amc_tf.models.image_discriminator import ImageDiscriminator, build_image_discriminator
from amc_tf.models.imaginator.generator import Generator, build_generator
from amc_tf.models.imaginator.model import Imaginator, generator_inputs
from amc_tf.models.spectral_norm import SpectralConv2D, SpectralConv3D

FAMILY = get_family("imaginator")


def conditions_of(batch):
    return {"appearance": batch["video"][:, 0], "motion_class": batch["motion_class"],
            "noise": batch["noise"]}


# ---------------------------------------------------------------------- config
def test_presets_and_json_round_trip():
    assert FAMILY.presets == ("paper-mug", "paper-natops", "cpu", "test")
    assert not FAMILY.uses_velocity and FAMILY.uses_appearance
    mug, natops = get_preset("paper-mug"), get_preset("paper-natops")
    assert (mug.num_classes, natops.num_classes) == (6, 24)
    for c in (mug, natops):
        assert (c.num_frames, c.frame_size, c.batch_size, c.noise_dim) == (32, 64, 64, 512)
        assert (c.g_learning_rate, c.d_learning_rate, c.adam_beta_1, c.adam_beta_2) == \
            (2e-4, 2e-4, 0.5, 0.999)
        assert (c.w_l1, c.w_video, c.w_image, c.first_temporal_kernel) == (100.0, 1.0, 1.0, 2)
    cpu, test = get_preset("cpu"), get_preset("test", num_classes=4)
    assert (cpu.num_frames, cpu.frame_size, cpu.frame_stride, cpu.first_temporal_kernel) == \
        (16, 32, 2, 2)
    assert (test.num_frames, test.frame_size, test.frame_stride, test.first_temporal_kernel) == \
        (8, 32, 4, 1)
    for c in (mug, natops, cpu, test):
        assert ImaginatorConfig.from_json(c.to_json()) == c
        assert FAMILY.config_from_json(c.to_json()) == c
    with pytest.raises(ValueError, match="fixes num_classes=6"):
        get_preset("paper-mug", num_classes=12)
    with pytest.raises(ValueError):
        get_preset("nope")
    with pytest.raises(ValueError, match="frame_size"):
        cpu.replace(frame_size=64)
    with pytest.raises(ValueError, match="image_d_frames"):
        test.replace(image_d_frames=16)
    with pytest.raises(ValueError):
        FAMILY.config("test", ablation="no-da")


# ---------------------------------------------------------------------- paper sizes
def test_paper_generator_and_discriminator_sizes():
    """PEERS.md's generator table (C x T x H x W there, (T, H, W, C) here) and Tables 2-3."""
    c = get_preset("paper-mug")
    batch = testing.random_model_batch(c, 1)
    g = build_generator(c)
    out = g(conditions_of(batch), return_blocks=True)
    assert [tuple(s.shape[1:]) for s in out["skips"]] == \
        [(32, 32, 64), (16, 16, 128), (8, 8, 256), (4, 4, 512)]             # h1..h4
    assert tuple(out["latent"].shape[1:]) == (1, 1, 100)                     # h5
    assert [tuple(b.shape[1:]) for b in out["blocks"]] == \
        [(2, 4, 4, 512), (4, 8, 8, 256), (8, 16, 16, 128), (16, 32, 32, 64)]
    assert tuple(out["video"].shape) == (1, 32, 64, 64, 3)
    assert float(tf.reduce_max(tf.abs(out["video"]))) <= 1.0                # tanh
    # Temporal ConvT widths and kernels (Conv3DTranspose kernels are (t, h, w, out, in));
    # their inputs: [z 512, one-hot 6, h5 100], then block output + skip map + one-hot.
    kernels = {w.path.split("/")[-2]: tuple(w.shape) for w in g.weights
               if w.path.endswith("kernel")}
    assert [kernels[f"deconv{i}_1"] for i in range(6, 11)] == [
        (2, 1, 1, 4096, 618), (4, 1, 1, 3072, 1030), (4, 1, 1, 1536, 518),
        (4, 1, 1, 768, 262), (4, 1, 1, 36, 134)]
    assert [kernels[f"deconv{i}_2"] for i in range(6, 11)] == [
        (1, 4, 4, 512, 4096), (1, 4, 4, 256, 3072), (1, 4, 4, 128, 1536), (1, 4, 4, 64, 768),
        (1, 4, 4, 3, 36)]
    params = g.count_params()
    print(f"paper-mug generator: {params / 1e6:.2f} M parameters")
    assert 74e6 < params < 77e6                                              # "about 75 M"

    dv = build_video_discriminator(c)
    dv.build()
    x = batch["video"]
    shapes = []
    for i, conv in enumerate(dv.convs):
        x = conv(x)
        shapes.append(tuple(x.shape[1:]))
        if i == 0:                                    # + the one-hot map: 70 channels
            x = tf.concat([x, tf.zeros(x.shape[:-1] + (c.num_classes,))], axis=-1)
    assert shapes == [(16, 32, 32, 64), (8, 16, 16, 128), (4, 8, 8, 256), (2, 4, 4, 512)]
    assert tuple(dv.convs[1].kernel.shape) == (4, 4, 4, 70, 128)
    assert tuple(dv.out.kernel.shape) == (2, 4, 4, 512, 1)
    assert dv({"video": batch["video"], "motion_class": batch["motion_class"]}).shape == (1,)

    di = build_image_discriminator(c)
    di.build()
    x = batch["video"][:, 0]
    shapes = []
    for conv in di.convs:
        x = conv(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [(32, 32, 64), (16, 16, 128), (8, 8, 256), (4, 4, 512)]
    assert di(batch["video"][:, 0]).shape == (1,) and di.out(x).shape == (1, 1, 1, 1)
    # NATOPS: the same networks with 24 classes.
    natops = build_generator(get_preset("paper-natops"))
    natops.build()
    assert 74e6 < natops.count_params() < 77e6


def test_paper_full_train_step_on_cpu():
    c = get_preset("paper-natops").replace(batch_size=2, steps_per_epoch=1)
    model = FAMILY.build(c)
    before = [v.numpy().copy() for v in model.trainable_variables]
    u = [v.numpy().copy() for v in model.non_trainable_variables if v.path.endswith("/u")]
    logs = model.fit(tf.data.Dataset.from_tensors(testing.random_model_batch(c, 2)).repeat(),
                     steps_per_epoch=1, epochs=1, verbose=0).history
    assert all(np.isfinite(v[0]) for v in logs.values())
    after = [v.numpy() for v in model.trainable_variables]
    assert all(not np.allclose(a, b) for a, b in zip(before, after) if a.size > 1)
    # Every spectral norm's u moved by its power iteration.
    u_after = [v.numpy() for v in model.non_trainable_variables if v.path.endswith("/u")]
    assert len(u) == 10 and all(not np.allclose(a, b) for a, b in zip(u, u_after))
    assert int(model.g_optimizer.iterations.numpy()) == 1 == \
        int(model.d_optimizer.iterations.numpy())


# ---------------------------------------------------------------------- spectral norm
@pytest.mark.parametrize("layer, shape", [
    (lambda: SpectralConv2D(16, 4, strides=2, padding="same"), (2, 8, 8, 6)),
    (lambda: SpectralConv3D(12, (2, 4, 4), padding="valid"), (2, 4, 8, 8, 5)),
], ids=["conv2d", "conv3d"])
def test_spectral_norm_makes_the_largest_singular_value_one(layer, shape):
    tf.keras.utils.set_random_seed(0)
    layer = layer()
    x = tf.random.normal(shape)
    layer(x)
    layer.kernel.assign(layer.kernel * 7.0)            # σ(W) far from 1 before normalising
    raw = np.linalg.svd(layer.kernel.numpy().reshape(-1, layer.filters), compute_uv=False)
    assert raw[0] > 3.0
    # One power iteration per training call. Random kernels this small have σ2 / σ1 up to
    # ~0.98, where 20 iterations leave σ up to 3 % high; 100 leave < 1e-3 (15 seeds measured).
    for _ in range(100):
        layer(x, training=True)
    for training in (False, True):
        kernel = layer.normalized_kernel(training=training).numpy()
        sigma = np.linalg.svd(kernel.reshape(-1, layer.filters), compute_uv=False)[0]
        assert abs(sigma - 1.0) < 1e-2, sigma


def test_spectral_norm_gradient_goes_through_sigma():
    """Training call: the gradient is Miyato et al.'s, with u, v constants and σ = u^T W v
    differentiated (not the gradient of W / σ with σ constant, which is what Keras's
    SpectralNormalization gives). Inference call: it equals finite differences."""
    layer = SpectralConv2D(5, 3, dtype="float64")
    layer.build((None, 6, 6, 4))
    rng = np.random.default_rng(0)
    weights = rng.standard_normal(tuple(layer.kernel.shape))
    layer.kernel.assign(weights)
    target = tf.constant(rng.standard_normal(weights.shape))
    matrix = weights.reshape(-1, 5)                     # W^T, (K, N)
    u0 = layer.u.numpy() / np.linalg.norm(layer.u.numpy())
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer.normalized_kernel(training=True) * target)
    grad = tape.gradient(loss, layer.kernel).numpy().reshape(-1, 5)
    v = u0 @ matrix.T
    v /= np.linalg.norm(v)
    u = layer.u.numpy()
    np.testing.assert_allclose(u, (v @ matrix) / np.linalg.norm(v @ matrix), rtol=1e-10)
    sigma = float((v @ matrix @ u.T)[0, 0])
    r = target.numpy().reshape(-1, 5)
    sigma_constant = r / sigma
    miyato = sigma_constant - float((r * matrix).sum()) / sigma ** 2 * (v.T @ u)
    np.testing.assert_allclose(grad, miyato, rtol=1e-8, atol=1e-10)
    assert np.linalg.norm(grad - sigma_constant) > 0.1 * np.linalg.norm(sigma_constant)

    # Inference: σ = ||W^T u|| with u stored; autodiff = central differences.
    def loss_at(w):
        layer.kernel.assign(w)
        return float(tf.reduce_sum(layer.normalized_kernel(training=False) * target))
    layer.kernel.assign(weights)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer.normalized_kernel(training=False) * target)
    grad = tape.gradient(loss, layer.kernel).numpy()
    direction = rng.standard_normal(weights.shape)
    eps = 1e-6
    numeric = (loss_at(weights + eps * direction) - loss_at(weights - eps * direction)) / \
        (2 * eps)
    np.testing.assert_allclose((grad * direction).sum(), numeric, rtol=1e-6)


# ---------------------------------------------------------------------- networks
NETWORKS = {
    Generator: (dict(num_frames=8, frame_size=16, num_classes=3, noise_dim=5,
                     encoder_filters=(2, 4), latent_dim=3, block_filters=(4, 2),
                     temporal_filters=(6, 4), rgb_temporal_filters=3, kernel_size=4,
                     leaky_relu_slope=0.1, sync_batchnorm=False),
                lambda out: out.shape == (1, 8, 16, 16, 3)),
    VideoDiscriminator: (dict(num_frames=8, frame_size=16, num_classes=3, filters=(2, 4),
                              kernel_size=4, leaky_relu_slope=0.1, power_iterations=2),
                         lambda out: out.shape == (1,)),
    ImageDiscriminator: (dict(frame_size=16, filters=(2, 4), kernel_size=4,
                              leaky_relu_slope=0.1, power_iterations=1),
                         lambda out: out.shape == (1,)),
}


@pytest.mark.parametrize("network", list(NETWORKS), ids=lambda n: n.__name__)
def test_networks_take_their_own_hyper_parameters(network):
    testing.check_network_hyper_parameters(network, *NETWORKS[network])


def test_spectral_conv_and_model_configs_round_trip():
    for layer in (SpectralConv2D(3, 4, strides=2, padding="same", power_iterations=2),
                  SpectralConv3D(2, (2, 4, 4), use_bias=False)):
        config = json.loads(json.dumps(layer.get_config()))
        assert type(layer).from_config(config).get_config() == layer.get_config()
    c = get_preset("test", num_classes=4)
    model = Imaginator(c, name="m")
    again = Imaginator.from_config(json.loads(json.dumps(model.get_config())))
    assert again.config == c and again.name == "m"


def test_generator_saves_loads_and_generates_whole_video(tmp_path):
    from amc_tf.models.saving import load_generator, save_model
    c = get_preset("test", num_classes=4)
    model = FAMILY.build(c)
    batch = testing.random_model_batch(c, 4)
    tf.function(model.train_step)(batch)                      # BN statistics away from init
    g = FAMILY.generator(model)
    conditions = conditions_of(batch)
    path = save_model(g, str(tmp_path / "generator.keras"))
    loaded = load_generator(str(tmp_path), "imaginator")
    assert type(loaded) is Generator and loaded.get_config() == g.get_config()
    np.testing.assert_allclose(loaded(conditions).numpy(), g(conditions).numpy(), atol=1e-6)
    assert FAMILY.load_generator(path).get_config() == g.get_config()
    # The contract: whole video, frame 0 = y_a, the rest G's; velocities are not needed.
    video = FAMILY.generate(loaded, dict(conditions, velocity=batch["velocity"]), c).numpy()
    assert video.shape == (4, 8, 32, 32, 3) and np.abs(video).max() <= 1.0
    np.testing.assert_array_equal(video[:, 0], batch["video"][:, 0].numpy())
    np.testing.assert_allclose(video[:, 1:], g(generator_inputs(conditions))[:, 1:].numpy(),
                               atol=1e-6)


# ---------------------------------------------------------------------- training
def test_tiny_model_overfits_tiny_batch():
    c = get_preset("test", num_classes=4, num_keypoints=3).replace(batch_size=4,
                                                                    g_learning_rate=2e-3)
    clips = testing.make_clips(4, 4, 3, seed=0, num_frames=c.num_frames, size=c.frame_size)
    batch = {"video": tf.constant(clips["video"].astype(np.float32) / 127.5 - 1.0),
             "velocity": tf.constant(clips["velocity"]),
             "motion_class": tf.constant(clips["motion_class"].astype(np.int32)),
             "subject_id": tf.constant(np.arange(4)),
             "noise": tf.zeros((4, c.noise_dim))}
    tf.keras.utils.set_random_seed(0)
    model = FAMILY.build(c)
    step = tf.function(model.train_step)

    def l1():
        fake = model.generator(generator_inputs(dict(batch, appearance=batch["video"][:, 0])),
                               training=True)
        return float(tf.reduce_mean(tf.abs(fake - batch["video"])))
    before = l1()
    for _ in range(150):
        logs = step(batch)
    after = l1()
    assert np.isfinite(float(logs["d_loss"]))
    assert after < 0.4 * before, (before, after)


def test_train_model_checkpoints_and_resumes(tmp_path, capsys):
    model, _ = testing.train_and_resume(FAMILY, str(tmp_path), capsys)
    assert int(model.g_optimizer.iterations.numpy()) == 15 == \
        int(model.d_optimizer.iterations.numpy())


# ---------------------------------------------------------------------- serving
def test_export_serves_class_dependent_videos(tmp_path):
    loaded, c = testing.check_export_generates_by_class(FAMILY, str(tmp_path / "saved_model"))
    # The Evaluator's signature on serialized clips: SSIM / PSNR without velocities.
    pattern = testing.write_clips(str(tmp_path / "data"), 3, 3, c.num_keypoints, seed=4)
    examples = [r.numpy() for r in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern),
                                                           compression_type="GZIP")]
    out = loaded.signatures["classify_generated"](examples=tf.constant(examples))
    assert out["probabilities"].shape == (3, 3) and out["ssim"].shape == (3,)
    assert np.all(np.isfinite(out["psnr"].numpy()))


# ---------------------------------------------------------------------- tf.distribute
@pytest.mark.two_replicas("gan_family", family="imaginator", image_d_frames=8)
def test_mirrored_two_replicas_match_one_replica(two_replicas):
    """One D-then-G step, batch 4, two replicas against one from the same weights: the same
    update (relative gap < 1e-3) and the same spectral norm vectors (tests/two_replicas.py).
    D_I on every frame: the per-replica random frame draw does not change the loss."""
    assert two_replicas["overall"] < 1e-3, two_replicas
    assert two_replicas["spectral_u"] == 8
