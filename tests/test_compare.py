"""`amc-tf compare`: every registered model family on the same clips, judged by the same judges
with the one suite, drawn from the same requests; the wall-clock budget stops training."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import fixtures as testing
from amc_app import cli, compare
from amc_tf.metrics import suite
from amc_tf.models import get_family
from amc_tf.models.family import family_names
from amc_tf.training import train
from amc_tf.training.guards import EarlierRunExists

NUM_CLASSES, NUM_KEYPOINTS = 3, 9


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("compare_data"))
    testing.write_summary(directory, NUM_CLASSES)
    testing.write_clips(directory, 12, NUM_CLASSES, NUM_KEYPOINTS, seed=0)
    testing.write_clips(directory, 6, NUM_CLASSES, NUM_KEYPOINTS, seed=1, split="eval")
    return directory


def test_compare_cli_tabulates_every_model_alike(data, tmp_path, capsys):
    out = str(tmp_path / "compare")
    models = family_names()
    assert cli.main(["compare", "--data", data, "--models", ",".join(models), "--preset", "test",
                     "--out", out, "--steps", "5", "--classifier-steps", "5",
                     "--no-keypoint-judge", "--rows", "3"]) == 0
    report = json.load(open(os.path.join(out, compare.COMPARE_JSON)))
    assert sorted(report["models"]) == sorted(models)
    table = open(os.path.join(out, compare.COMPARE_MD)).read()
    header = next(line for line in table.splitlines() if line.startswith("| model"))
    assert all(metric in header for metric in suite.METRICS)
    sheets = []
    for name in models:
        m = report["models"][name]
        assert m["steps"] == 5 and m["step_s"] > 0 and m["generation_latency_s"] > 0
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        assert len(row.split("|")) == len(header.split("|"))
        overall = m["suite"]["overall"]
        # The same judges, on the same real clips, for every model.
        assert overall[suite.REAL_ACCURACY] == \
            report["models"][models[0]]["suite"]["overall"][suite.REAL_ACCURACY]
        assert 0.0 <= overall[suite.ACCURACY] <= 1.0
        sheets.append(np.asarray(Image.open(m["contact_sheet"])))
    # The real clips' row (TwoStreamVAN's Table 2 bound): the judge on the real clips.
    bound = next(line for line in table.splitlines() if line.startswith("| real clips"))
    assert len(bound.split("|")) == len(header.split("|"))
    real = report["models"][models[0]]["suite"]["overall"]
    assert compare.real_clip_bound(report) == {
        suite.ACCURACY: real[suite.REAL_ACCURACY],
        suite.INCEPTION_SCORE: real[suite.REAL_INCEPTION_SCORE],
        suite.INTER_ENTROPY: real[suite.REAL_INTER_ENTROPY],
        suite.INTRA_ENTROPY: real[suite.REAL_INTRA_ENTROPY]}
    # One judge directory: the test presets agree on frames and classes.
    judge_sets = os.listdir(os.path.join(out, compare.JUDGES_DIR))
    assert len(judge_sets) == 1 and judge_sets[0].startswith("key-"), judge_sets
    # The same appearances in the contact sheets of the models that take one (frame 0 is y_a):
    # the first column. Models without one (G3AN) draw frame 0 too.
    frame = sheets[0].shape[0] // 3
    with_y_a = [sheet for name, sheet in zip(models, sheets)
                if get_family(name).uses_appearance]
    for sheet in sheets[1:]:
        assert sheet.shape == sheets[0].shape
    for sheet in with_y_a[1:]:
        np.testing.assert_array_equal(sheet[:, 96:96 + frame], with_y_a[0][:, 96:96 + frame])
    assert "wrote" in capsys.readouterr().out
    # A later compare into the same OUT on the same data reuses the judges.
    family = get_family(models[0])
    config = family.config("test", num_classes=NUM_CLASSES, num_keypoints=NUM_KEYPOINTS)
    from amc_tf.data import datasets
    classifier, keypoint, _ = compare._judges(
        config, data, os.path.join(data, "Split-train", "*"), os.path.join(data, "Split-eval", "*"),
        out, 5, datasets.get("gestures"), False, {})
    assert "reusing the judges" in capsys.readouterr().out
    assert classifier is not None and keypoint is None


def test_a_killed_judge_set_is_never_reused_under_another_key(data, tmp_path, monkeypatch):
    """Issue 35's sequence: a run killed while training its judges, a rerun, the orphan
    removed, a run with other classifier steps killed after saving its network, then the first
    key again: each reused set is the one its key names. Where the sets go is under test, so
    the training is a stand-in that saves the steps it was given as the network."""
    from amc_tf.data import datasets
    killed = set()

    def train_judges(config, train_pattern, eval_pattern, directory, steps, *args, **kwargs):
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "classifier.keras"), "w") as f:
            f.write(str(steps))
        if steps in killed:
            raise KeyboardInterrupt                       # SIGINT after the network was saved
        return steps, None, {}

    monkeypatch.setattr(train, "train_judges", train_judges)
    monkeypatch.setattr(train, "load_judges", lambda directory: (int(open(os.path.join(
        directory, "classifier.keras")).read()), None, {}))
    config = get_family("amc-gan").config("test", num_classes=NUM_CLASSES,
                                          num_keypoints=NUM_KEYPOINTS)
    out, style = str(tmp_path / "out"), datasets.get("gestures")
    judges = os.path.join(out, compare.JUDGES_DIR)

    def judge_set(steps):
        return compare._judges(config, data, "train*", "eval*", out, steps, style, False, {})[0]
    killed.add(4)
    with pytest.raises(KeyboardInterrupt):
        judge_set(4)
    killed.clear()
    assert judge_set(4) == 4
    for name in os.listdir(judges):                       # the user removes the orphan
        if not os.path.exists(os.path.join(judges, name, compare.JUDGE_KEY_FILE)):
            shutil.rmtree(os.path.join(judges, name))
    killed.add(6)
    with pytest.raises(KeyboardInterrupt):
        judge_set(6)
    killed.clear()
    assert judge_set(4) == 4                              # the 4-step set, not the 6-step network
    assert judge_set(6) == 6
    assert sorted(os.listdir(judges)) == sorted(
        compare.judge_dir_name(json.dumps(dict(compare.judge_key(config),
                                               data=os.path.abspath(data), classifier_steps=n,
                                               keypoint_judge=False), sort_keys=True))
        for n in (4, 6))


def test_budget_stops_training_between_steps_and_phases(data, tmp_path):
    family = get_family("amc-gan")
    config = family.config("test", num_classes=NUM_CLASSES, num_keypoints=NUM_KEYPOINTS)
    timer = compare._callbacks()(budget_s=1e-6)
    pattern = os.path.join(data, "Split-train", "*")
    # An earlier compare's checkpoint in the model's OUT (another data set's, say): a run that
    # does not resume refuses it, or with overwrite (compare's) removes it first (issue 35).
    earlier = tmp_path / "run" / "checkpoints"
    earlier.mkdir(parents=True)
    for name in ("ckpt-40.index", "ckpt-40.data-00000-of-00001"):
        (earlier / name).write_bytes(b"another run")
    with pytest.raises(EarlierRunExists, match=r"ckpt-40.*--overwrite"):
        train.train_model(family, config, pattern, None, str(tmp_path / "run"), steps=20,
                          resume=False, verbose=0)
    assert sorted(os.listdir(earlier)) == ["ckpt-40.data-00000-of-00001", "ckpt-40.index"]
    model = train.train_model(family, config, pattern, None, str(tmp_path / "run"), steps=20,
                              resume=False, overwrite=True, verbose=0, callbacks=[timer])
    assert not any(name.startswith("ckpt-40") for name in os.listdir(earlier))
    assert timer.steps == 1                             # stopped after the first step ...
    assert int(model.g_optimizer.iterations.numpy()) == 1   # ... and no later phase started
    assert os.path.exists(tmp_path / "run" / family.generator_file())
    # The partial epoch's checkpoint holds the steps that ran, not a whole epoch.
    assert os.path.exists(tmp_path / "run" / "checkpoints" / "ckpt-1.index")


def test_compare_rejects_unknown_models(data, tmp_path):
    with pytest.raises(SystemExit, match="unknown model"):
        cli.main(["compare", "--data", data, "--models", "amc-gan,nope", "--out",
                  str(tmp_path)])


def test_one_judge_reads_models_of_different_frame_sizes():
    """At cpu AMC-GAN's 64x64 videos and the other families' 32x32 ones are judged by one
    network, the 32x32 models' judge (the same judge_key, so trained once)."""
    configs = {name: get_family(name).config("cpu", num_classes=NUM_CLASSES,
                                             num_keypoints=NUM_KEYPOINTS)
               for name in family_names()}
    assert configs["amc-gan"].judge_frame_size == 64
    smallest = min(c.judge_frame_size for c in configs.values())
    keys = {json.dumps(compare.judge_key(compare.shared_judge_config(c, "cpu", smallest)),
                       sort_keys=True) for c in configs.values()}
    assert smallest == 32 and len(keys) == 1
    alone = compare.shared_judge_config(configs["amc-gan"], "cpu", 64)
    assert alone == configs["amc-gan"]          # compared with its own kind: its own judge
