"""Training never saves or resumes garbage: a NaN loss stops the run naming the step and the last
good checkpoint, no NaN checkpoint or network is written or resumed from, and unreadable
checkpoints and `.keras` files are named with the way out (issue 13)."""

import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import fixtures as testing
from amc_app import cli
from amc_tf.models import get_family
from amc_tf.models.saving import load_generator
from amc_tf.training import train
from amc_tf.training.guards import TrainingDiverged, UnusableCheckpoint

FAMILY = get_family("amc-gan")
PER_EPOCH = 5  # the test preset's steps_per_epoch: one checkpoint every 5 steps


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = tmp_path_factory.mktemp("guard_data")
    testing.write_summary(str(directory), 4)
    return str(directory), testing.write_clips(str(directory), 8, 4, 9, seed=0)


@pytest.fixture(scope="module")
def config():
    c = FAMILY.config("test", num_classes=4, num_keypoints=9)
    assert c.steps_per_epoch == PER_EPOCH
    return c


class PoisonAt(keras.callbacks.Callback):
    """Writes NaN into one generator weight after global step `step` (a run that diverges)."""

    def __init__(self, step):
        super().__init__()
        self.step, self.epoch = step, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch * PER_EPOCH + batch + 1 == self.step:
            weight = self.model.generator.trainable_variables[0]
            weight.assign(tf.fill(weight.shape, float("nan")))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data, config):
    """A 10-step run: checkpoints ckpt-5 and ckpt-10, generator.keras. Tests work on copies."""
    out = tmp_path_factory.mktemp("guard_run") / "gan"
    train.train_model(FAMILY, config, data[1], None, str(out), steps=10, verbose=0)
    return out


@pytest.fixture
def run(trained, tmp_path):
    return shutil.copytree(trained, tmp_path / "gan")


def _checkpoints(out):
    return sorted((p.name for p in (out / "checkpoints").glob("ckpt-*.index")),
                  key=lambda name: int(name[5:-6]))


def _resume(out, config):
    """What a resumed run restores: (step, the checkpoint's model)."""
    model = FAMILY.build(config)
    checkpoint = train.TrainingCheckpoint(str(out / "checkpoints"), model)
    return checkpoint.restore(), model


def test_nan_loss_stops_the_run_at_its_step_and_keeps_the_last_good_checkpoint(
        run, data, config):
    generator_bytes = (run / "generator.keras").read_bytes()
    # Poisoned after step 12: step 13's losses are NaN.
    with pytest.raises(TrainingDiverged, match=r"diverged at step 13: .*nan.*ckpt-10"):
        train.train_model(FAMILY, config, data[1], None, str(run), steps=20, verbose=0,
                          callbacks=[PoisonAt(12)])
    assert _checkpoints(run) == ["ckpt-5.index", "ckpt-10.index"]     # nothing after the NaN
    assert (run / "generator.keras").read_bytes() == generator_bytes  # no NaN network saved
    step, model = _resume(run, config)                  # the same command resumes from there
    assert step == 10 and not train.non_finite_weights(model.variables)


def test_nan_weights_at_an_epoch_end_are_never_checkpointed(run, data, config):
    (run / "generator.keras").unlink()
    # Poisoned after the epoch's last step: its losses were finite, its weights are not.
    with pytest.raises(TrainingDiverged,
                       match=r"NaN or Inf weights at step 15.*not saved.*ckpt-10"):
        train.train_model(FAMILY, config, data[1], None, str(run), steps=20, verbose=0,
                          callbacks=[PoisonAt(15)])
    assert _checkpoints(run) == ["ckpt-5.index", "ckpt-10.index"]
    assert not (run / "generator.keras").exists()


def _poison_checkpoint(out, config, number):
    """Rewrites ckpt-<number> with NaN generator weights (a checkpoint of a diverged run)."""
    model = FAMILY.build(config)
    checkpoint = train.TrainingCheckpoint(str(out / "checkpoints"), model)
    prefix = str(out / "checkpoints" / f"ckpt-{number}")
    checkpoint.checkpoint.restore(prefix).assert_existing_objects_matched()
    weight = model.generator.trainable_variables[0]
    weight.assign(tf.fill(weight.shape, float("nan")))
    checkpoint.checkpoint.write(prefix)


def test_a_nan_checkpoint_is_skipped_and_never_resumed_silently(run, config, capsys):
    _poison_checkpoint(run, config, 10)
    step, model = _resume(run, config)
    log = capsys.readouterr().out
    assert "skipped the checkpoint" in log and "ckpt-10: 1 variable(s) hold NaN" in log, log
    assert step == 5 and not train.non_finite_weights(model.variables)
    # With every checkpoint diverged there is nothing to resume: an error naming each.
    _poison_checkpoint(run, config, 5)
    with pytest.raises(UnusableCheckpoint, match=r"ckpt-10: .*NaN.*nor .*ckpt-5.*--no-resume"):
        _resume(run, config)


@pytest.mark.parametrize("index_bytes", [b"", b"\x00not a checkpoint state {{"])
def test_unreadable_checkpoint_index_resumes_from_the_checkpoint_files(
        run, config, capsys, index_bytes):
    # A crash while the index was rewritten: before, an empty one raised a bare ValueError and
    # a garbled one restarted training from step 0 without a word.
    (run / "checkpoints" / "checkpoint").write_bytes(index_bytes)
    step, _ = _resume(run, config)
    assert step == 10


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_one(run, config, capsys):
    for path in (run / "checkpoints").glob("ckpt-10.data-*"):   # killed while writing
        path.write_bytes(path.read_bytes()[:100])
    step, _ = _resume(run, config)
    log = capsys.readouterr().out
    assert step == 5 and "skipped the checkpoint" in log and "ckpt-10" in log, log


def test_unreadable_checkpoints_name_the_files(run, data, config, tmp_path):
    """Every checkpoint's data truncated (a crash or a bad copy), or another preset's
    checkpoint (other shapes): the run stops naming them, never silently half-restored."""
    other_run = shutil.copytree(run, tmp_path / "other")
    for path in (run / "checkpoints").glob("ckpt-*.data-*"):
        path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(RuntimeError, match=r"cannot restore the checkpoint .*ckpt-10.*ckpt-5"):
        train.train_model(FAMILY, config, data[1], None, str(run), steps=15, verbose=0)
    other = config.replace(noise_dim=config.noise_dim + 4)
    with pytest.raises(RuntimeError, match="cannot restore the checkpoint"):
        train.train_model(FAMILY, other, data[1], None, str(other_run), steps=15, verbose=0)


def test_train_cli_names_an_unusable_checkpoint_and_the_way_out(trained, data, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(trained / "checkpoints", out / "model" / "checkpoints")
    for path in (out / "model" / "checkpoints").glob("ckpt-*.index"):
        path.write_bytes(b"")
    args = ["train", "--model", "amc-gan", "--preset", "test", "--data", data[0],
            "--out", str(out), "--steps", "5"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "amc-tf train: error: cannot restore the checkpoint" in err
    assert "ckpt-10" in err and "ckpt-5" in err and "--no-resume --overwrite" in err
    assert "Traceback" not in err
    # --no-resume alone would put a new run's checkpoints beside these: refused, nothing written
    # (issue 35); --overwrite needs --no-resume.
    assert cli.main(args + ["--no-resume"]) == 2
    err = capsys.readouterr().err
    assert "holds the checkpoints of an earlier run" in err and "--overwrite" in err, err
    assert "Traceback" not in err
    assert cli.main(args + ["--overwrite"]) == 2
    assert "goes with --no-resume" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "model").iterdir()) == ["checkpoints"]
    assert _checkpoints(out / "model") == ["ckpt-5.index", "ckpt-10.index"]
    # Replacing removes the earlier run whole: only the new run's checkpoint is left.
    assert cli.main(args + ["--no-resume", "--overwrite"]) == 0
    assert _checkpoints(out / "model") == ["ckpt-5.index"]
    assert tf.train.latest_checkpoint(str(out / "model" / "checkpoints")).endswith("ckpt-5")


def test_resume_follows_the_checkpoint_index(run, config):
    """A ckpt-N the index does not list is not the run's (a superseded run's, left beside it):
    resuming follows the index (issue 35: a stale ckpt-10 was resumed though the index named
    ckpt-5)."""
    directory = str(run / "checkpoints")
    tf.compat.v1.train.update_checkpoint_state(directory, f"{directory}/ckpt-5",
                                     all_model_checkpoint_paths=[f"{directory}/ckpt-5"])
    checkpoint = train.TrainingCheckpoint(directory, FAMILY.build(config))
    assert checkpoint.restore() == 5
    assert checkpoint.restored_from.endswith("ckpt-5")


def test_a_truncated_keras_file_is_named_with_the_way_out(run):
    path = run / "generator.keras"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match=rf"{path} is not a readable \.keras file.*again"):
        load_generator(str(run))
    path.write_bytes(b"PK\x05\x06" + bytes(18))                 # an empty zip archive
    with pytest.raises(ValueError, match=rf"cannot load the network in {path}"):
        load_generator(str(run))


def test_non_finite_weights_names_the_variables():
    layer = keras.layers.Dense(2, name="head")
    layer.build((None, 3))
    assert train.non_finite_weights(layer.variables) == []
    layer.kernel.assign(np.full((3, 2), np.inf, np.float32))
    assert train.non_finite_weights(layer.variables) == [layer.kernel.path]
