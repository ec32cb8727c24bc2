"""Training tests: overfitting a tiny batch, resuming a killed run, the training API end to end
(classifier, model family, velocity bank, inference), cloud-safe I/O on ram://, checkpoints,
small data, and the CLI."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import fixtures as testing
from amc_tf.models import get_family
from amc_tf.models.amc_gan.config import get_preset
from amc_tf.models.amc_gan.model import AMCGAN
from amc_tf.training.guards import TrainingDiverged

FAMILY = get_family("amc-gan")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
                PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_tiny_model_overfits_tiny_batch():
    tf.keras.utils.set_random_seed(0)     # the initial weights: the same run every time
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
    for i in range(150):
        step(batch)
        if i == 0:                          # traced: steps 2-4 timed
            start = time.perf_counter()
        elif i == 3:
            seconds_per_step = (time.perf_counter() - start) / 3
    after = l1()
    assert after < 0.4 * before, (before, after)
    # The test preset's step is well under a second (the suite runs many of them).
    assert seconds_per_step < 0.5, seconds_per_step


def _write_data(directory, train=16, evals=8, num_classes=4, num_keypoints=9):
    """Preprocessed-layout clips with the summary.json `amc-tf train` reads (9 keypoints: the
    gestures style)."""
    testing.write_summary(str(directory), num_classes)
    patterns = [testing.write_clips(str(directory), train, num_classes, num_keypoints, seed=0)]
    if evals:
        patterns.append(testing.write_clips(str(directory), evals, num_classes, num_keypoints,
                                            seed=1, split="eval"))
    return patterns


def test_killed_training_resumes_from_checkpoint(tmp_path):
    """A run started over an earlier one (--no-resume --overwrite), killed after its first
    checkpoint, then the plain command: it resumes the new run's checkpoint, never the earlier
    run's (issue 35), and finishes."""
    data = tmp_path / "data"
    _write_data(data)
    out = tmp_path / "out"
    checkpoints = out / "model" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for name in ("ckpt-400.index", "ckpt-400.data-00000-of-00001"):   # an earlier run's
        (checkpoints / name).write_bytes(b"an earlier run")
    (checkpoints / "checkpoint").write_text('model_checkpoint_path: "ckpt-400"\n'
                                            'all_model_checkpoint_paths: "ckpt-400"\n')
    cmd = [sys.executable, "-m", "amc_app.cli", "train", "--model", "amc-gan", "--preset",
           "test", "--data", str(data), "--out", str(out), "--steps", "400"]
    index = checkpoints / "checkpoint"                     # CheckpointManager's index

    def new_checkpoints():
        return [p for p in checkpoints.glob("ckpt-*.index") if p.name != "ckpt-400.index"]
    proc = subprocess.Popen(cmd + ["--no-resume", "--overwrite"], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not new_checkpoints() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    time.sleep(2.0)
    proc.send_signal(signal.SIGKILL)                       # killed mid-run
    proc.wait()
    assert index.exists() and new_checkpoints(), proc.stdout.read()[-3000:]
    assert not (checkpoints / "ckpt-400.index").exists()   # the earlier run removed whole
    cmd[cmd.index("400")] = "30"
    # test preset: 5 steps per checkpoint. Resuming needs fewer epochs than 30 / 5 = 6.
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "resumed from step" in log, log[-3000:]
    resumed = int(log.split("resumed from step")[1].split()[0])
    assert resumed >= 5 and resumed % 5 == 0 and resumed != 400
    if resumed < 30:
        assert f"Epoch {resumed // 5 + 1}/6" in log and "Epoch 1/6" not in log
    assert tf.train.latest_checkpoint(str(index.parent)).endswith(f"ckpt-{max(resumed, 30)}")
    assert (out / "model" / "generator.keras").exists()
    assert any(name.startswith("events") for _, _, files in os.walk(out / "model" / "logs")
               for name in files)


def test_training_api_end_to_end(tmp_path):
    from amc_tf import inference
    from amc_tf.models import saving
    from amc_tf.training import train
    c = FAMILY.config("test", num_classes=4, num_keypoints=3)
    pattern = testing.write_clips(str(tmp_path / "d"), 16, 4, 3, seed=0)
    evals = testing.write_clips(str(tmp_path / "d"), 8, 4, 3, seed=1, split="eval")
    clf, metrics = train.train_classifier(c, pattern, evals, str(tmp_path / "clf"), steps=4,
                                          verbose=0)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["eval_clips"] == 8
    clf2 = saving.load_classifier(str(tmp_path / "clf"))
    video = tf.random.uniform((2, c.num_frames, c.frame_size, c.frame_size, 3), -1, 1)
    np.testing.assert_allclose(clf(video).numpy(), clf2(video).numpy(), atol=1e-5)
    gan = train.train_model(FAMILY, c, pattern, evals, str(tmp_path / "gan"), steps=5,
                            verbose=0)
    assert int(gan.g_optimizer.iterations.numpy()) == 5
    bank = train.build_velocity_bank(pattern, c)
    assert tuple(bank.shape) == (16, c.num_frames - 1, 6)
    g = FAMILY.load_generator(str(tmp_path / "gan" / FAMILY.generator_file()))
    appearance = np.full((3, 64, 64, 3), 200, np.uint8)
    v1 = inference.generate(FAMILY, g, c, appearance, [0, 1, 2], seed=7, velocity_bank=bank)
    v2 = inference.generate(FAMILY, g, c, appearance, [0, 1, 2], seed=7, velocity_bank=bank)
    assert v1.shape == (3, c.num_frames, 64, 64, 3) and v1.dtype == np.uint8
    np.testing.assert_array_equal(v1, v2)                           # same seed, same video
    assert (v1[:, 0] == 200).all()                                   # frame 0 = appearance
    given = inference.generate(FAMILY, g, c, appearance, 1, seed=0,
                               velocity=np.zeros((3, c.num_frames - 1, 6), np.float32))
    assert given.shape == v1.shape


def test_reconstruction_warmup_then_algorithm1(tmp_path):
    """The first reconstruction_warmup_steps update G alone; then Algorithm 1 runs (D updates),
    and a run resumed after the warm-up continues with Algorithm 1."""
    from amc_tf.training import train
    c = FAMILY.config("test", num_classes=4, num_keypoints=3).replace(
        reconstruction_warmup_steps=5)
    pattern = testing.write_clips(str(tmp_path / "d"), 16, 4, 3, seed=0)
    out = str(tmp_path / "gan")
    gan = train.train_model(FAMILY, c, pattern, None, out, steps=5, verbose=0)
    assert int(gan.g_optimizer.iterations.numpy()) == 5
    assert int(gan.d_optimizer.iterations.numpy()) == 0                # no D update yet
    gan = train.train_model(FAMILY, c, pattern, None, out, steps=15, verbose=0)  # resumes at 5
    assert int(gan.g_optimizer.iterations.numpy()) == 15
    assert int(gan.d_optimizer.iterations.numpy()) == 10
    with pytest.raises(ValueError, match="reconstruction_warmup_steps must be"):
        c.replace(reconstruction_warmup_steps=3)


def test_train_cli_writes_everything_to_ram_filesystem(tmp_path):
    """`amc-tf train ... --out ram://...`: every output goes through tf.io.gfile (a stand-in for
    gs://); nothing lands on the local disk."""
    from amc_app import cli
    data = tmp_path / "data"
    _write_data(data)
    before = set(os.listdir(tmp_path))
    assert cli.main(["train", "--model", "amc-gan", "--preset", "test", "--data", str(data),
                     "--out", "ram://train_cli", "--steps", "5", "--classifier-steps", "2"]) == 0
    for path in ("model/generator.keras", "model/config.json", "model/checkpoints/checkpoint",
                 "classifier/classifier.keras", "classifier/classifier_metrics.json",
                 "classifier/keypoint_detector.keras", "classifier/keypoint_classifier.keras",
                 "classifier/keypoint_judge_metrics.json", "evaluation.json"):
        assert tf.io.gfile.exists(f"ram://train_cli/{path}"), path
    # The whole suite, overall and per class, in process.
    from amc_tf.metrics import suite
    with tf.io.gfile.GFile("ram://train_cli/evaluation.json") as f:
        table = json.loads(f.read())
    assert set(suite.METRICS) <= set(table["overall"])
    assert len(table) > 1
    assert tf.io.gfile.glob("ram://train_cli/model/logs/train/events*")
    assert set(os.listdir(tmp_path)) == before


def test_train_cli_config_overrides_and_saved_judges(tmp_path, capsys):
    """`--set FIELD=VALUE` changes the preset's config (written to OUT/model/config.json); a bad
    field or value is a clear error before any training; `--judges DIR` evaluates with judges
    saved by an earlier run instead of training them. The first run's data has an empty eval
    split (12 clips of one subject): training runs and says what it skips."""
    from amc_app import cli
    from amc_tf.training.cli import config_overrides
    data = tmp_path / "data"
    _write_data(data)
    c = get_preset("test")
    changes = config_overrides(c, ["gram=channel", "w_l1=10", "g_decoder_filters=[8, 8, 4, 4]"])
    assert changes == {"gram": "channel", "w_l1": 10, "g_decoder_filters": [8, 8, 4, 4]}
    # The config holds tuples, as one read from JSON does.
    assert c.replace(**changes).g_decoder_filters == (8, 8, 4, 4)
    no_eval = tmp_path / "no_eval"
    _write_data(no_eval, train=12, evals=0)
    os.makedirs(no_eval / "Split-eval")
    with tf.io.TFRecordWriter(str(no_eval / "Split-eval" / "clips.gz"), options="GZIP"):
        pass                                               # what preprocess writes: no record
    first = str(tmp_path / "first")
    assert cli.main(["train", "--preset", "test", "--data", str(no_eval), "--out", first,
                     "--steps", "5", "--classifier-steps", "2", "--no-keypoint-judge",
                     "--set", "gram=channel", "--set", "w_l1=7.5"]) == 0
    out = capsys.readouterr().out
    assert "eval split" in out and "holds no clip" in out
    assert "training without the generated-video summaries" in out
    assert os.path.exists(os.path.join(first, "model", "generator.keras"))
    with open(os.path.join(first, "model", "config.json")) as f:
        saved = json.load(f)
    assert (saved["gram"], saved["w_l1"]) == ("channel", 7.5)
    for bad, message in ((["--set", "gramm=channel"], "has no field 'gramm'"),
                         (["--set", "gram"], "FIELD=VALUE"),
                         (["--set", "gram=pixels"], "unknown gram 'pixels'")):
        assert cli.main(["train", "--preset", "test", "--data", str(data), "--out",
                         str(tmp_path / "bad"), "--steps", "5", *bad]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    second = str(tmp_path / "second")
    assert cli.main(["train", "--preset", "test", "--data", str(data), "--out", second,
                     "--steps", "5", "--judges", os.path.join(first, "classifier")]) == 0
    assert "judges from" in capsys.readouterr().out
    assert os.path.exists(os.path.join(second, "evaluation.json"))
    assert not os.path.exists(os.path.join(second, "classifier"))


def test_trainer_run_fns_on_ram_filesystem(tmp_path):
    """Both TFX Trainer run_fns with every input and output directory on ram://, then the export
    serves a video from there."""
    from tfx.components.trainer.fn_args_utils import FnArgs

    from pipeline.modules import classifier_trainer, model_trainer
    local = tmp_path / "examples"
    _write_data(local)
    examples = "ram://pipeline_root/VideoExampleGen/examples/1"
    for name in ("summary.json", "Split-train/clips.gz", "Split-eval/clips.gz"):
        tf.io.gfile.makedirs(os.path.dirname(f"{examples}/{name}"))
        tf.io.gfile.copy(str(local / name), f"{examples}/{name}", overwrite=True)
    common = dict(train_files=[f"{examples}/Split-train/*"],
                  eval_files=[f"{examples}/Split-eval/*"],
                  custom_config={"model": "amc-gan", "preset": "test"})
    classifier_model = "ram://pipeline_root/classifier_trainer/model/2/Format-Serving"
    classifier_trainer.run_fn(FnArgs(
        serving_model_dir=classifier_model, model_run_dir="ram://pipeline_root/clf_run/2",
        train_steps=2, **common))
    serving = "ram://pipeline_root/model_trainer/model/3/Format-Serving"
    run_dir = "ram://pipeline_root/model_trainer/model_run/3"
    model_trainer.run_fn(FnArgs(serving_model_dir=serving, model_run_dir=run_dir,
                                base_model=classifier_model, train_steps=5, **common))
    assert tf.io.gfile.exists(f"{run_dir}/generator.keras")
    assert tf.io.gfile.exists(f"{run_dir}/checkpoints/checkpoint")
    assert tf.io.gfile.exists(f"{serving}/saved_model.pb")
    loaded = tf.saved_model.load(serving)
    out = loaded.signatures["generate"](
        appearance=tf.zeros([1, 64, 64, 3], tf.uint8), motion_class=tf.constant([1]),
        seed=tf.constant([3], tf.int64))
    assert out["video"].shape == (1, 8, 64, 64, 3)
    from serving.export import read_metadata
    # The class names come from ExampleGen's summary.json, not a built-in list.
    metadata = read_metadata(serving)
    assert metadata["class_names"] == [f"class_{i}" for i in range(4)]
    # The judges (B.3 and B.4) are inside: the evaluation signature returns the whole suite's
    # outputs, and their own figures on real clips travel in the metadata.
    assert {"keypoint_probabilities", "real_keypoint_probabilities", "ssim",
            "real_probabilities"} <= set(metadata["evaluation_outputs"])
    assert set(metadata["judge_metrics"]) == {
        "classifier_real_accuracy", "classifier_validation_accuracy",
        "keypoint_detector_error_px", "keypoint_detector_pck_3px",
        "keypoint_classifier_real_accuracy"}
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(
        tf.io.gfile.glob(f"{examples}/Split-eval/*"), compression_type="GZIP").take(2)]
    outputs = loaded.signatures["classify_generated"](examples=tf.constant(serialized))
    assert outputs["keypoint_probabilities"].shape == (2, 4)


def test_cli_imports_without_tensorflow():
    """`amc-tf train` registers without TensorFlow, and its help lists every family's presets
    and ablations, read from the registry (TwoStreamVAN's were missing from a hand-kept list)."""
    code = ("import sys, json, amc_tf.training.cli as m, argparse; "
            "p = argparse.ArgumentParser(); s = p.add_subparsers(); m.register(s); "
            "assert 'tensorflow' not in sys.modules; "
            "print(json.dumps(''.join(s.choices['train'].format_help().split())))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = json.loads(proc.stdout.strip().splitlines()[-1])   # the help without whitespace
    from amc_tf.models import family_names
    for name in family_names():
        family = get_family(name)
        for listed in (family.presets, family.ablations):
            assert f"{name}:{','.join(listed)}" in text, (name, listed, text)


@pytest.mark.parametrize("model", [
    pytest.param("amc-gan", marks=pytest.mark.xfail(
        strict=True, raises=TrainingDiverged,
        reason="known defect: AMC-GAN's appearance discriminator reaches Inf weights within 5 "
               "bfloat16 steps at the test preset; the divergence guard stops the run instead "
               "of saving them (left for the scale issue)")),
    "imaginator"])
def test_mixed_precision_training_of_every_family(tmp_path, model):
    """`--mixed-precision mixed_bfloat16`: the family trains under the policy, its losses stay
    finite (the divergence guard would stop the run), and the saved generator loads and
    generates uint8 videos in float32 afterwards."""
    import keras

    from amc_tf import inference
    from amc_tf.models.saving import load_generator
    from amc_tf.training import train
    family = get_family(model)
    c = family.config("test", num_classes=4, num_keypoints=9).replace(
        mixed_precision="mixed_bfloat16")
    pattern = testing.write_clips(str(tmp_path / "d"), 8, 4, 9, seed=0)
    out = str(tmp_path / "run")
    trained = train.train_model(family, c, pattern, None, out, steps=5, verbose=0)
    assert trained.generator.compute_dtype == "bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"     # restored after
    bank = train.build_velocity_bank(pattern, c) if family.uses_velocity else None
    appearance = testing.make_clips(1, 4, 9, seed=2)["video"][:, 0]
    video = inference.generate(family, load_generator(out, family=model), c, appearance, [1],
                               seed=3, velocity_bank=bank)
    assert video.dtype == np.uint8 and video.shape == (1, c.num_frames, 64, 64, 3)
    assert video[0, 1:].std() > 0


def test_graph_optimizer_options_last_for_the_run_only():
    """A family's Grappler options (AMC-GAN: no arithmetic optimizer, which would fold the
    ConvLSTM's chain of per-step gradient sums into one) hold inside and are restored after,
    also after an error; a family with none changes nothing."""
    from amc_tf.models import get_family
    from amc_tf.training.train import graph_optimizer_options
    amc, imaginator = get_family("amc-gan"), get_family("imaginator")
    assert amc.graph_optimizer_options == {"arithmetic_optimization": False}
    with graph_optimizer_options(amc):
        assert tf.config.optimizer.get_experimental_options()["arithmetic_optimization"] is False
    assert tf.config.optimizer.get_experimental_options().get("arithmetic_optimization",
                                                              True) is True
    with pytest.raises(RuntimeError):
        with graph_optimizer_options(amc):
            raise RuntimeError("a failed run")
    assert tf.config.optimizer.get_experimental_options().get("arithmetic_optimization",
                                                              True) is True
    outside = tf.config.optimizer.get_experimental_options()
    with graph_optimizer_options(imaginator):
        assert tf.config.optimizer.get_experimental_options() == outside


def test_classifier_with_a_weight_average_keeps_the_averaged_weights(tmp_path):
    """clf_weight_ema: the judge is validated and kept with the exponential moving average of
    its weights (Adam's use_ema), and a momentum outside [0, 1) is refused when the config is
    made."""
    from amc_tf.training import train
    c = FAMILY.config("test", num_classes=4, num_keypoints=3).replace(clf_weight_ema=0.5)
    # 40 clips: a few fall in the 10 % validation split (by a hash of their ids).
    pattern = testing.write_clips(str(tmp_path / "d"), 40, 4, 3, seed=0)
    evals = testing.write_clips(str(tmp_path / "d"), 8, 4, 3, seed=1, split="eval")
    clf, metrics = train.train_classifier(c, pattern, evals, str(tmp_path / "clf"), steps=6,
                                          verbose=0)
    assert metrics["validation_accuracy"] is not None and metrics["best_step"] == 6
    averages = clf.optimizer._model_variables_moving_average
    assert len(averages) == len(clf.trainable_variables) > 0
    for weight, average in zip(clf.trainable_variables, averages):
        np.testing.assert_allclose(weight.numpy(), average.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="clf_weight_ema must be 0"):
        c.replace(clf_weight_ema=1.0)


def test_classifier_keeps_the_best_epoch_and_breaks_ties_on_the_validation_loss():
    """A saturated validation accuracy (a small split) ties many epochs: the kept weights are
    those of the lowest validation loss among the best, not merely the last best."""
    import keras
    from amc_tf.training.train import KeepBestWeights
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    keep = KeepBestWeights()
    keep.set_model(model)
    logs = [(0.90, 0.30), (1.00, 0.20), (1.00, 0.10), (1.00, 0.15), (0.95, 0.05)]
    for epoch, (accuracy, loss) in enumerate(logs):
        model.layers[0].bias.assign([float(epoch)])
        keep.on_epoch_end(epoch, {"val_accuracy": accuracy, "val_loss": loss})
    keep.on_train_end()
    assert (keep.best, keep.best_epoch) == (1.0, 2)
    assert float(model.layers[0].bias.numpy()[0]) == 2.0
    # Without a loss in the logs, a later epoch wins a tie.
    keep = KeepBestWeights()
    keep.set_model(model)
    for epoch, accuracy in enumerate((0.5, 0.8, 0.8, 0.7)):
        keep.on_epoch_end(epoch, {"val_accuracy": accuracy})
    assert keep.best_epoch == 2
