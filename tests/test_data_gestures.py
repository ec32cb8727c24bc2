"""Gestures (NATOPS-style) data: synthetic clips, real Beam preprocessing runs, bad-input handling,
the schema, the VideoExampleGen executor and the CLI."""
import glob
import json
import os

import numpy as np
import pytest

from amc_tf.data import adapters, clip_rules, datasets, features, keypoints, preprocess, synthetic

STYLE = datasets.get("gestures")
K = STYLE.num_keypoints
L = STYLE.num_landmarks
NUM_CLASSES = 6
COPIES = 2
SCHEMA = os.path.join(os.path.dirname(__file__), "..", "schemas", "gestures", "schema.pbtxt")

# Bad clips added to a good raw dir: clip id -> the reason it must be rejected with.
BAD = {
    "subject00/bad_corrupt": "corrupt_video",
    "subject00/bad_truncated": "truncated_video",
    "subject01/bad_no_annotations": "missing_annotations",
    "subject01/bad_nan": "nan_annotations",
    "subject02/bad_label": "unknown_label",
    "subject02/bad_short": "too_short",
}


def _add_bad_clips(raw):
    good = sorted(glob.glob(os.path.join(raw, "subject00", "*.avi")))[0][:-4]
    annotation = json.load(open(good + ".json"))

    def write(clip, video_bytes=None, **changes):
        stem = os.path.join(raw, clip)
        if video_bytes is not None:
            with open(stem + ".avi", "wb") as f:
                f.write(video_bytes)
        if changes.get("annotation", True) is not None:
            with open(stem + ".json", "w") as f:
                json.dump(dict(annotation, **{k: v for k, v in changes.items()
                                              if k != "annotation"}), f)

    video = open(good + ".avi", "rb").read()
    write("subject00/bad_corrupt", os.urandom(4000))
    write("subject00/bad_truncated", video[: len(video) // 3])
    write("subject01/bad_no_annotations", video, annotation=None)
    nan_joints = [list(row) for row in annotation["joints"]]
    nan_joints[5][3] = float("nan")
    write("subject01/bad_nan", video, joints=nan_joints)
    write("subject02/bad_label", video, label="moonwalk")
    write("subject02/bad_short", video, joints=annotation["joints"][:20])


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("gestures_raw"))
    synthetic.write_gestures(out, clips=18, seed=3, num_classes=NUM_CLASSES, num_subjects=3)
    _add_bad_clips(out)
    return out


@pytest.fixture(scope="module")
def processed(raw, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("gestures_out"))
    summary = preprocess.run_preprocess("gestures", raw, out, augment_copies=COPIES,
                                        eval_fraction=0.34, seed=5)
    return out, summary


def _read_split(out, split):
    import tensorflow as tf
    files = sorted(glob.glob(os.path.join(out, f"Split-{split}", "*.gz")))
    assert files, f"no files in Split-{split}"
    records = list(tf.data.TFRecordDataset(files, compression_type="GZIP"))
    if not records:
        return []
    parsed = features.parse_examples(tf.stack(records), K, num_landmarks=L)
    return [{key: value[i].numpy() for key, value in parsed.items()} for i in range(len(records))]


@pytest.fixture(scope="module")
def examples(processed):
    out, _ = processed
    return {split: _read_split(out, split) for split in preprocess.SPLITS}


def test_synthetic_gestures_are_deterministic_and_decodable(tmp_path):
    a = synthetic.write_gestures(str(tmp_path / "a"), clips=2, seed=11, num_classes=2)
    synthetic.write_gestures(str(tmp_path / "b"), clips=2, seed=11, num_classes=2)
    synthetic.write_gestures(str(tmp_path / "c"), clips=2, seed=12, num_classes=2)
    refs = {d: STYLE.list_clips(str(tmp_path / d)) for d in "abc"}
    assert [r["clip"] for r in refs["a"]] == a
    names = ["raise_both_arms", "raise_one_arm"]
    clips = {d: [adapters.load_gesture_clip(r, names, 32) for r in refs[d]] for d in "abc"}
    for x, y in zip(clips["a"], clips["b"]):
        np.testing.assert_array_equal(x.frames, y.frames)
        np.testing.assert_array_equal(x.points, y.points)
    assert not np.array_equal(clips["a"][0].points, clips["c"][0].points)
    clip = clips["a"][0]
    assert clip.frames.shape[1:] == (synthetic.GESTURE_FRAME_H, synthetic.GESTURE_FRAME_W, 3)
    assert len(clip.frames) >= 31 * 3 + 1  # room for stride 3
    # Starts in the neutral pose: wrists below the shoulders on frame 0.
    j = keypoints.GESTURE_JOINTS
    assert (clip.points[0, j.index("l_wrist"), 1] > clip.points[0, j.index("l_shoulder"), 1])


def test_gesture_classes_have_distinct_wrist_trajectories():
    body = dict(synthetic._subject_body(np.random.default_rng(0)), chest=(160.0, 105.0))
    names = STYLE.class_names(num_classes=12)
    tracks = []
    for name in names:
        joints = synthetic.gesture_joints(name, 64, np.random.default_rng(1), body)
        wrists = joints[:, [keypoints.GESTURE_JOINTS.index("l_wrist"),
                            keypoints.GESTURE_JOINTS.index("r_wrist")]]
        # Mirror-invariant description: sort the two wrists by how far they travel.
        order = np.argsort(np.abs(np.diff(wrists, axis=0)).sum(axis=(0, 2)))
        tracks.append(wrists[:, order].reshape(64, -1))
    for i in range(len(names)):
        for k in range(i + 1, len(names)):
            distance = np.abs(tracks[i] - tracks[k]).mean()
            assert distance > 4.0, f"{names[i]} and {names[k]} move alike ({distance:.1f} px)"


def test_examples_have_contract_shapes_and_dtypes(examples):
    everything = examples["train"] + examples["eval"]
    assert len(everything) == COPIES * 18
    for ex in everything:
        assert ex[features.VIDEO].shape == (32, 64, 64, 3)
        assert ex[features.VIDEO].dtype == np.uint8
        assert ex[features.KEYPOINTS].shape == (32, 2 * K)
        # NATOPS annotates only the 9 joints: the landmarks are the keypoints.
        np.testing.assert_array_equal(ex[features.LANDMARKS], ex[features.KEYPOINTS])
        assert ex[features.VELOCITY].shape == (31, 2 * K)
        assert ex[features.KEYPOINTS].dtype == np.float32
        assert 0 <= ex[features.MOTION_CLASS] < NUM_CLASSES
        assert ex[features.VIDEO].std() > 10  # a real picture, not a constant
        # The person is large and inside the 64x64 crop (the chest at its centre, B.1).
        points = ex[features.KEYPOINTS].reshape(32, K, 2)
        assert (points > -2).all() and (points < 66).all()
        chest = points[:, keypoints.GESTURE_JOINTS.index("chest")]
        assert np.abs(chest - 31.5).max() < 3.0
        assert np.ptp(points[0, :, 1]) > 20  # head to navel alone spans a third of the frame


def test_velocity_equals_keypoint_differences(examples):
    for ex in examples["train"] + examples["eval"]:
        expected = np.clip(np.diff(ex[features.KEYPOINTS], axis=0) / features.VELOCITY_SCALE,
                           -1, 1)
        np.testing.assert_allclose(ex[features.VELOCITY], expected, atol=1e-5)
        assert np.abs(ex[features.VELOCITY]).max() <= 1.0


def test_flip_mirrors_keypoints_and_swaps_joints(examples):
    j = keypoints.GESTURE_JOINTS
    flipped = [ex for ex in examples["train"] + examples["eval"]
               if ex[features.CLIP_ID].decode().endswith(":flip")]
    assert 0 < len(flipped) < 2 * 18
    for ex in examples["train"] + examples["eval"]:
        points = ex[features.KEYPOINTS].reshape(32, K, 2)
        # Whether mirrored or not, the person's left side is on the image's right.
        assert (points[:, j.index("l_shoulder"), 0] > points[:, j.index("r_shoulder"), 0]).all()

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    points = rng.uniform(0, 63, (32, K, 2))
    mirrored_frames, mirrored = clip_rules.flip(frames, points, STYLE.flip_map)
    np.testing.assert_array_equal(mirrored_frames[:, :, ::-1], frames)
    for name in j:
        other = name.replace("l_", "#").replace("r_", "l_").replace("#", "r_")
        np.testing.assert_allclose(mirrored[:, j.index(name), 0], 63 - points[:, j.index(other), 0])
        np.testing.assert_allclose(mirrored[:, j.index(name), 1], points[:, j.index(other), 1])


def test_stride_sampling_starts_at_the_neutral_frame(raw, examples):
    """NATOPS rule: 32 frames from the clip's first frame at stride 1-3; geometry is preserved."""
    refs = {r["clip"]: r for r in STYLE.list_clips(raw)}
    names = STYLE.class_names(num_classes=NUM_CLASSES)
    strides = set()
    for ex in (examples["train"] + examples["eval"])[:12]:
        clip_id = ex[features.CLIP_ID].decode()
        clip, augmentation = clip_id.split("#")
        stride = int(augmentation.split(":")[1][1:])
        strides.add(stride)
        raw_points = adapters.load_gesture_clip(refs[clip], names, 32).points
        sampled = raw_points[np.arange(32) * stride]
        got = ex[features.KEYPOINTS].reshape(32, K, 2)
        if clip_id.endswith(":flip"):
            got = clip_rules.flip(np.zeros((1, 1, 1, 3)), got, STYLE.flip_map)[1]
        scale = features.FRAME_SIZE / clip_rules.GESTURE_CROP
        np.testing.assert_allclose(got - got[:1], (sampled - sampled[:1]) * scale, atol=1e-3)
    assert strides <= {1, 2, 3} and len(strides) >= 2


def test_sample_indices_follow_the_anchor_and_stride():
    """Unit: frames that encode their own index come out at anchor + stride * (i - before)."""
    n = 100
    aus = np.zeros((n, 3))
    aus[70, 1] = 4.0
    frames = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None],
                             (n, 40, 40, 3)).copy()
    points = np.tile(np.array([[5.0, 5.0], [30.0, 30.0]]), (n, 34, 1))[:, :68]
    clip = adapters.RawClip(frames, points, 0, aus=aus)
    assert clip_rules.peak_frame(aus) == 70
    assert clip_rules.strides_that_fit(n, 70, 23) == [1, 2, 3]
    assert clip_rules.strides_that_fit(n, 80, 23) == [1, 2]
    for stride in (1, 2, 3):
        video, _, _ = clip_rules.make_clip(datasets.get("faces"), clip, stride, flipped=False)
        np.testing.assert_array_equal(video[:, 32, 32, 0], 70 + stride * (np.arange(32) - 23))
        video, _, _ = clip_rules.make_clip(STYLE, clip, stride, flipped=False)
        np.testing.assert_array_equal(video[:, 32, 32, 0], stride * np.arange(32))


def test_splits_are_by_subject(examples):
    subjects = {s: {ex[features.SUBJECT] for ex in examples[s]} for s in preprocess.SPLITS}
    assert subjects["train"] and subjects["eval"]
    assert not subjects["train"] & subjects["eval"]
    clips = {s: {ex[features.CLIP_ID].decode().split("#")[0] for ex in examples[s]}
             for s in preprocess.SPLITS}
    assert not clips["train"] & clips["eval"]


def test_bad_input_is_rejected_with_its_reason(processed, examples):
    out, summary = processed
    rejected = preprocess.read_rejected(out)
    assert {r["clip"]: r["reason"] for r in rejected} == BAD
    for record in rejected:
        assert record["detail"] and record["path"] and record["split"] in preprocess.SPLITS
    assert summary["rejected_clips"] == len(BAD)
    assert summary["rejected_by_reason"] == {reason: 1 for reason in BAD.values()}
    assert summary["accepted_clips"] == 18 and summary["examples"] == COPIES * 18
    assert sum(s["examples"] for s in summary["splits"].values()) == COPIES * 18
    assert summary["splits"]["eval"]["examples"] == len(examples["eval"])
    # The good clips come through intact: every one, with all its copies.
    ids = [ex[features.CLIP_ID].decode().split("#")[0] for s in preprocess.SPLITS
           for ex in examples[s]]
    assert len(set(ids)) == 18 and all(ids.count(i) == COPIES for i in set(ids))
    assert not set(ids) & set(BAD)


def test_output_validates_against_the_schema(processed):
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.utils import io_utils
    out, _ = processed
    schema = io_utils.parse_pbtxt_file(SCHEMA, schema_pb2.Schema())
    stats = tfdv.generate_statistics_from_tfrecord(os.path.join(out, "Split-*", "*.gz"))
    anomalies = tfdv.validate_statistics(stats, schema)
    assert not anomalies.anomaly_info, anomalies.anomaly_info
    # The domain is really checked: a narrower motion_class domain is flagged.
    schema.feature[[f.name for f in schema.feature].index("motion_class")].int_domain.max = 0
    assert tfdv.validate_statistics(stats, schema).anomaly_info


def test_multiprocessing_runner_gives_the_same_examples(raw, processed, tmp_path):
    """2 DirectRunner worker processes: same examples, same splits, same rejections."""
    out, summary = processed
    multi = str(tmp_path / "multi")
    summary2 = preprocess.run_preprocess("gestures", raw, multi, augment_copies=COPIES,
                                         eval_fraction=0.34, seed=5,
                                         beam_args=preprocess.beam_args_for_workers(2))
    assert summary2 == summary
    for split in preprocess.SPLITS:
        a = sorted((ex[features.CLIP_ID], ex[features.VIDEO].tobytes())
                   for ex in _read_split(out, split))
        b = sorted((ex[features.CLIP_ID], ex[features.VIDEO].tobytes())
                   for ex in _read_split(multi, split))
        assert a == b


def test_video_example_gen_executor(raw, tmp_path):
    """The TFX component's executor: same transforms, TFX layout, rejected records in its uri."""
    from tfx.types import standard_artifacts, standard_component_specs
    from amc_tf.data import example_gen
    component = example_gen.VideoExampleGen(input_base=raw, dataset="gestures",
                                            custom_config={"augment_copies": 1, "seed": 5,
                                                           "eval_fraction": 0.34})
    exec_properties = dict(component.exec_properties)
    exec_properties[standard_component_specs.INPUT_BASE_KEY] = raw
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    example_gen.Executor().Do({}, {"examples": [examples]}, exec_properties)
    assert sorted(json.loads(examples.split_names)) == ["eval", "train"]
    from tfx.components.util import examples_utils
    from tfx.proto import example_gen_pb2
    assert examples_utils.get_payload_format(examples) == example_gen_pb2.FORMAT_TF_EXAMPLE
    train = _read_split(examples.uri, "train")
    evals = _read_split(examples.uri, "eval")
    assert len(train) + len(evals) == 18
    assert not {e[features.SUBJECT] for e in train} & {e[features.SUBJECT] for e in evals}
    rejected = preprocess.read_rejected(examples.uri)
    assert {r["clip"]: r["reason"] for r in rejected} == BAD
    assert preprocess.read_summary(examples.uri)["accepted_clips"] == 18
    assert component.outputs["examples"].type_name == "Examples"
    with pytest.raises(ValueError, match="unknown preprocessing option"):
        example_gen.VideoExampleGen(input_base=raw, custom_config={"augment_copys": 2})


def test_example_gen_without_augmentation_at_the_paper_natops_preset(raw, tmp_path):
    """The paper takes each NATOPS clip once (B.1): the paper-natops run's ExampleGen config,
    through the component's executor (its Struct turns numbers into floats), writes one
    unflipped copy per clip at stride 1."""
    from tfx.types import standard_artifacts, standard_component_specs
    from amc_tf.data import example_gen
    from pipeline import configs
    config = dict(configs.example_gen_config("paper-natops", "gestures"), seed=5,
                  eval_fraction=0.34)
    component = example_gen.VideoExampleGen(input_base=raw, dataset="gestures",
                                            custom_config=config)
    exec_properties = dict(component.exec_properties)
    exec_properties[standard_component_specs.INPUT_BASE_KEY] = raw
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    example_gen.Executor().Do({}, {"examples": [examples]}, exec_properties)
    ids = [e[features.CLIP_ID].decode() for split in ("train", "eval")
           for e in _read_split(examples.uri, split)]
    assert len(ids) == 18 and all(i.endswith("#0:s1") for i in ids), ids


def test_cli_synth_preprocess_contact_sheet(tmp_path):
    from amc_app import cli
    raw, out, png = str(tmp_path / "raw"), str(tmp_path / "out"), str(tmp_path / "sheet.png")
    assert cli.main(["synth", "gestures", "--out", raw, "--clips", "8", "--num-classes", "4",
                     "--seed", "2"]) == 0
    assert cli.main(["preprocess", "--dataset", "gestures", "--raw", raw, "--out", out]) == 0
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["examples"] == 8 and summary["class_names"][:2] == ["raise_both_arms",
                                                                     "raise_one_arm"]
    assert cli.main(["contact-sheet", out, "--out", png, "--clips", "3"]) == 0
    import cv2
    sheet = cv2.imread(png)
    assert sheet.shape[0] == 3 * 130 and sheet.std() > 10


def test_cli_module_does_not_import_tensorflow_or_beam():
    import subprocess
    import sys
    code = ("import sys, amc_tf.data.cli; "
            "print([m for m in ('tensorflow', 'apache_beam') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_crop_replicates_edges_past_the_frame():
    frames = np.zeros((2, 100, 100, 3), np.uint8)
    frames[:, :, :50] = 200                            # left half bright
    points = np.array([[[0.0, 0.0], [99.0, 99.0]]] * 2)
    inside, mapped = clip_rules.crop_and_resize(frames, points, (0, 0, 100), size=50)
    outside, _ = clip_rules.crop_and_resize(frames, points, (-50, 0, 100), size=50)
    np.testing.assert_allclose(mapped[0], [[-0.25, -0.25], [49.25, 49.25]])
    assert (inside[:, :, :24] == 200).all() and (inside[:, :, 26:] == 0).all()
    assert (outside[:, :, :49] == 200).all()           # the bright edge column, replicated


def test_encoded_examples_equal_tf_train_examples():
    """The hand-written wire format (no TF in Beam workers) is exactly tf.train.Example's."""
    import tensorflow as tf
    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    points = rng.uniform(-3, 70, (32, 2 * K)).astype(np.float32)
    landmarks = rng.uniform(-3, 70, (32, 2 * L)).astype(np.float32)
    for motion_class in (0, 5, 300):
        serialized = clip_rules.to_example(video, points, motion_class, "subject03", "c#0:s2",
                                           landmarks)
        expected = tf.train.Example(features=tf.train.Features(feature={
            "video": tf.train.Feature(bytes_list=tf.train.BytesList(value=[video.tobytes()])),
            "keypoints": tf.train.Feature(float_list=tf.train.FloatList(value=points.ravel())),
            "landmarks": tf.train.Feature(float_list=tf.train.FloatList(
                value=landmarks.ravel())),
            "velocity": tf.train.Feature(float_list=tf.train.FloatList(
                value=clip_rules.velocity(points.astype(np.float64)).astype(np.float32).ravel())),
            "motion_class": tf.train.Feature(int64_list=tf.train.Int64List(value=[motion_class])),
            "subject": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"subject03"])),
            "clip_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"c#0:s2"])),
        }))
        assert tf.train.Example.FromString(serialized) == expected
    negative = clip_rules.encode_example({"n": np.array([-7, 2**40], np.int64)})
    assert list(tf.train.Example.FromString(negative).features.feature["n"].int64_list.value) == \
        [-7, 2**40]
