"""Training tests: overfitting a tiny batch, resuming a killed run, the training API end to end
(classifier, GAN, velocity bank, inference), and the CLI."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from amc_tf.config import get_preset
from amc_tf.models.amcgan import AMCGAN
from amc_tf.training import testing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
                PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_tiny_model_overfits_tiny_batch():
    c = get_preset("test", num_classes=4, num_keypoints=3).replace(
        batch_size=4, g_learning_rate=2e-3)
    clips = testing.make_clips(4, 4, 3, seed=0, num_frames=c.num_frames, size=c.frame_size)
    batch = {"video": tf.constant(clips["video"].astype(np.float32) / 127.5 - 1.0),
             "velocity": tf.constant(clips["velocity"]),
             "motion_class": tf.constant(clips["motion_class"].astype(np.int32)),
             "subject_id": tf.constant(np.arange(4))}
    gan = AMCGAN(c)
    gan.compile()
    gan.build_all()
    step = tf.function(gan.train_step)
    noise = tf.zeros((4, c.noise_dim))
    inputs = {"appearance": batch["video"][:, 0], "motion_class": batch["motion_class"],
              "velocity": batch["velocity"], "noise": noise}

    def l1():
        return float(tf.reduce_mean(tf.abs(gan.generator(inputs, training=True) -
                                           batch["video"][:, 1:])))
    before = l1()
    for _ in range(150):
        step(batch)
    after = l1()
    assert after < 0.4 * before, (before, after)


def test_killed_training_resumes_from_checkpoint(tmp_path):
    data = tmp_path / "data"
    testing.write_clips(str(data), 16, 4, 3, seed=0)
    testing.write_clips(str(data), 8, 4, 3, seed=1, split="eval")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "amc_tf.cli", "train", "--preset", "test", "--data", str(data),
           "--out", str(out), "--steps", "400", "--num-classes", "4", "--num-keypoints", "3"]
    ckpt = out / "gan" / "checkpoint.npz"
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    time.sleep(2.0)
    proc.send_signal(signal.SIGKILL)                       # killed mid-run
    proc.wait()
    assert ckpt.exists(), proc.stdout.read()[-3000:]
    saved_mtime = ckpt.stat().st_mtime
    cmd[cmd.index("400")] = "30"
    # test preset: 5 steps per checkpoint. Resuming needs fewer epochs than 30 / 5 = 6.
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "resumed from step" in log, log[-3000:]
    resumed = int(log.split("resumed from step")[1].split()[0])
    assert resumed >= 5 and resumed % 5 == 0
    if resumed < 30:
        assert f"Epoch {resumed // 5 + 1}/6" in log and "Epoch 1/6" not in log
    assert ckpt.stat().st_mtime >= saved_mtime
    assert (out / "gan" / "generator.keras").exists()
    assert any(name.startswith("events") for _, _, files in os.walk(out / "gan" / "logs")
               for name in files)


def test_training_api_end_to_end(tmp_path):
    from amc_tf import inference
    from amc_tf.models import load_classifier, load_generator
    from amc_tf.training import build_velocity_bank, train_classifier, train_gan
    c = get_preset("test", num_classes=4, num_keypoints=3)
    train = testing.write_clips(str(tmp_path / "d"), 16, 4, 3, seed=0)
    evals = testing.write_clips(str(tmp_path / "d"), 8, 4, 3, seed=1, split="eval")
    clf, metrics = train_classifier(c, train, evals, str(tmp_path / "clf"), steps=4, verbose=0)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    clf2 = load_classifier(str(tmp_path / "clf"))
    video = tf.random.uniform((2, 32, 64, 64, 3), -1, 1)           # a raw 32-frame clip
    np.testing.assert_allclose(clf(video).numpy(), clf2(video).numpy(), atol=1e-5)
    gan = train_gan(c, train, evals, str(tmp_path / "gan"), steps=5, verbose=0)
    assert int(gan.g_optimizer.iterations.numpy()) == 5
    bank = build_velocity_bank(train, c)
    assert bank["velocity"].shape == (16, c.num_frames - 1, 6)
    assert bank["velocity"].dtype == np.float32 and bank["motion_class"].dtype == np.int32
    g = load_generator(str(tmp_path / "gan"))
    appearance = np.full((3, 64, 64, 3), 200, np.uint8)
    v1 = inference.generate(g, appearance, [0, 1, 2], seed=7, velocity_bank=bank)
    v2 = inference.generate(g, appearance, [0, 1, 2], seed=7, velocity_bank=bank)
    assert v1.shape == (3, c.num_frames, c.frame_size, c.frame_size, 3) and v1.dtype == np.uint8
    np.testing.assert_array_equal(v1, v2)                           # same seed, same video
    assert (v1[:, 0] == 200).all()                                   # frame 0 = appearance
    given = inference.generate(g, appearance, 1, seed=0,
                               velocity=np.zeros((3, c.num_frames - 1, 6), np.float32))
    assert given.shape == v1.shape


def test_reconstruction_warmup_then_algorithm1(tmp_path):
    """The first reconstruction_warmup_steps update G alone; then Algorithm 1 runs (D updates),
    and a run resumed after the warm-up continues with Algorithm 1."""
    from amc_tf.training import train_gan
    c = get_preset("test", num_classes=4, num_keypoints=3).replace(
        reconstruction_warmup_steps=5)
    train = testing.write_clips(str(tmp_path / "d"), 16, 4, 3, seed=0)
    out = str(tmp_path / "gan")
    gan = train_gan(c, train, None, out, steps=5, verbose=0)
    assert int(gan.g_optimizer.iterations.numpy()) == 5
    assert int(gan.d_optimizer.iterations.numpy()) == 0                # no D update yet
    assert not gan.reconstruction_warmup
    gan = train_gan(c, train, None, out, steps=15, verbose=0)            # resumes at step 5
    assert int(gan.g_optimizer.iterations.numpy()) == 15
    assert int(gan.d_optimizer.iterations.numpy()) == 10
    with pytest.raises(ValueError, match="reconstruction_warmup_steps must be"):
        c.replace(reconstruction_warmup_steps=3)


def test_cli_imports_without_tensorflow():
    code = ("import sys, amc_tf.training.cli as m, argparse; "
            "p = argparse.ArgumentParser(); m.register(p.add_subparsers()); "
            "assert 'tensorflow' not in sys.modules; print('OK')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert "OK" in proc.stdout, proc.stderr[-2000:]
