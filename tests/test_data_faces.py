"""Faces (MUG-style) data: synthetic takes with OpenFace CSVs, the peak rule, flip, bad input and
the schema, through a real Beam preprocessing run."""
import glob
import os
import shutil

import numpy as np
import pytest

from amc_tf.data import (adapters, classes, clip_rules, datasets, features, keypoints, preprocess,
                         synthetic)

STYLE = datasets.get("faces")
K = STYLE.num_keypoints
L = STYLE.num_landmarks
COPIES = 2
GOOD = 12
SCHEMA = os.path.join(os.path.dirname(__file__), "..", "schemas", "faces", "schema.pbtxt")

BAD = {
    "subject00/anger/take900": "corrupt_video",
    "subject00/happy/take900": "truncated_video",
    "subject01/sad/take900": "missing_annotations",
    "subject01/fear/take900": "nan_annotations",
    "subject00/contempt/take000": "unknown_label",
    "subject01/surprise/take900": "too_short",
}


def _add_bad_takes(raw):
    def copy(src, dst):
        shutil.copytree(os.path.join(raw, src), os.path.join(raw, dst))
        return os.path.join(raw, dst)

    take = copy("subject00/anger/take000", "subject00/anger/take900")
    with open(os.path.join(take, "img_0010.jpg"), "wb") as f:
        f.write(b"\xff\xd8 not a jpeg")
    take = copy("subject00/happy/take000", "subject00/happy/take900")
    for path in sorted(glob.glob(os.path.join(take, "*.jpg")))[-10:]:
        os.remove(path)
    take = copy("subject01/sad/take000", "subject01/sad/take900")
    os.remove(os.path.join(take, "openface.csv"))
    take = copy("subject01/fear/take000", "subject01/fear/take900")
    lines = open(os.path.join(take, "openface.csv")).read().splitlines()
    cells = lines[30].split(", ")
    cells[40] = "nan"  # x_35: landmark 36, not a keypoint (every landmark is checked)
    lines[30] = ", ".join(cells)
    open(os.path.join(take, "openface.csv"), "w").write("\n".join(lines) + "\n")
    copy("subject00/disgust/take000", "subject00/contempt/take000")
    take = copy("subject01/surprise/take000", "subject01/surprise/take900")
    lines = open(os.path.join(take, "openface.csv")).read().splitlines()
    open(os.path.join(take, "openface.csv"), "w").write("\n".join(lines[:21]) + "\n")


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("faces_raw"))
    written = synthetic.write_faces(out, clips=GOOD, seed=4, num_subjects=2)
    assert len(written) == GOOD
    _add_bad_takes(out)
    return out


@pytest.fixture(scope="module")
def processed(raw, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("faces_out"))
    summary = preprocess.run_preprocess("faces", raw, out, augment_copies=COPIES,
                                        eval_fraction=0.5, seed=1)
    return out, summary


@pytest.fixture(scope="module")
def examples(processed):
    import tensorflow as tf
    out, _ = processed
    result = {}
    for split in preprocess.SPLITS:
        files = sorted(glob.glob(os.path.join(out, f"Split-{split}", "*.gz")))
        records = list(tf.data.TFRecordDataset(files, compression_type="GZIP"))
        parsed = features.parse_examples(tf.stack(records), K, num_landmarks=L)
        result[split] = [{k: v[i].numpy() for k, v in parsed.items()} for i in range(len(records))]
    return result


def _load(raw, clip):
    ref = [r for r in STYLE.list_clips(raw) if r["clip"] == clip][0]
    return adapters.load_face_clip(ref, classes.EMOTIONS, 32)


def test_synthetic_takes_follow_table_a(raw):
    """The strongest AUs at each take's peak are EMFACS AUs of its emotion; landmarks move."""
    for emotion in classes.EMOTIONS:
        clip = _load(raw, f"subject00/{emotion}/take000")
        assert clip.frames.shape[1:] == (128, 128, 3) and len(clip.frames) >= 98
        peak = clip_rules.peak_frame(clip.aus)
        assert 40 < peak < len(clip.frames) - 8  # starts neutral, apex later
        assert clip.aus[:20].max() < 0.6
        # clip.aus holds the EMFACS columns of this emotion only; compare with all AUs from CSV.
        columns = adapters._read_openface_csv(
            os.path.join(raw, f"subject00/{emotion}/take000/openface.csv"))
        at_peak = {au: columns[keypoints.au_column(au)][peak] for au in keypoints.OPENFACE_AUS}
        strongest = sorted(at_peak, key=at_peak.get)[-2:]
        assert set(strongest) <= set(keypoints.EMFACS_AUS[emotion]), (emotion, at_peak)
        moved = np.abs(clip.points[peak] - clip.points[0] - (clip.points[peak] - clip.points[0])
                       .mean(axis=0)).max()
        assert moved > 2.0, f"{emotion}: the expression barely changes the landmarks"


def test_examples_shapes_velocity_and_subject_splits(examples):
    everything = examples["train"] + examples["eval"]
    assert len(everything) == COPIES * GOOD
    for ex in everything:
        assert ex[features.VIDEO].shape == (32, 64, 64, 3) and ex[features.VIDEO].dtype == np.uint8
        assert ex[features.KEYPOINTS].shape == (32, 2 * K)
        # All 68 landmarks (B.4); the model's 11 keypoints are their columns.
        landmarks = ex[features.LANDMARKS].reshape(32, L, 2)
        assert L == 68
        np.testing.assert_array_equal(landmarks[:, list(keypoints.FACE_LANDMARK_IDS)],
                                      ex[features.KEYPOINTS].reshape(32, K, 2))
        assert 0 <= ex[features.MOTION_CLASS] < 6
        np.testing.assert_allclose(
            ex[features.VELOCITY],
            np.clip(np.diff(ex[features.KEYPOINTS], axis=0) / features.VELOCITY_SCALE, -1, 1),
            atol=1e-5)
        points = ex[features.KEYPOINTS].reshape(32, K, 2)
        assert (points > 0).all() and (points < 63).all()  # the face is centred and inside
        # Landmark 2 (image-left jaw) stays left of landmark 16 whether flipped or not.
        assert (points[:, 0, 0] < points[:, 2, 0]).all()
    subjects = {s: {ex[features.SUBJECT] for ex in examples[s]} for s in preprocess.SPLITS}
    assert subjects["train"] and subjects["eval"] and not subjects["train"] & subjects["eval"]


def test_peak_frame_is_frame_23_at_the_chosen_stride(raw, examples):
    """B.1: 23 frames before the AU peak, 8 after, at a random stride that fits."""
    strides = set()
    for ex in examples["train"] + examples["eval"]:
        clip_id = ex[features.CLIP_ID].decode()
        clip, augmentation = clip_id.split("#")
        stride = int(augmentation.split(":")[1][1:])
        raw_clip = _load(raw, clip)
        peak = clip_rules.peak_frame(raw_clip.aus)
        assert stride in (clip_rules.strides_that_fit(len(raw_clip.frames), peak, 23) or [1])
        strides.add(stride)
        idx = np.clip(peak + stride * (np.arange(32) - 23), 0, len(raw_clip.frames) - 1)
        expected = raw_clip.points[idx]
        got = ex[features.LANDMARKS].reshape(32, L, 2)
        if clip_id.endswith(":flip"):
            got = clip_rules.flip(np.zeros((1, 1, 1, 3)), got, STYLE.landmark_flip_map)[1]
        # The crop is a translation and one scale: fit the scale, the residual must vanish.
        a, b = (expected - expected[23]).ravel(), (got - got[23]).ravel()
        scale = a @ b / (a @ a)
        assert np.abs(b - scale * a).max() < 0.02
        assert 0.2 < scale < 1.0
    assert len(strides) >= 2


def test_face_flip_swaps_mirrored_landmarks():
    order = keypoints.FACE_LANDMARK_IDS
    # 1-based template numbers of the paper: 2<->16, 20<->25, 38<->45, 42<->47; 9, 52, 58 stay.
    pairs = {2: 16, 20: 25, 38: 45, 42: 47, 9: 9, 52: 52, 58: 58}
    pairs.update({v: k for k, v in pairs.items()})
    for j, src in enumerate(keypoints.FACE_FLIP):
        assert order[src] + 1 == pairs[order[j] + 1]
    points = np.random.default_rng(0).uniform(0, 63, (32, K, 2))
    _, mirrored = clip_rules.flip(np.zeros((32, 64, 64, 3), np.uint8), points,
                                  STYLE.flip_map)
    np.testing.assert_allclose(mirrored[:, 0, 0], 63 - points[:, 2, 0])
    np.testing.assert_allclose(mirrored[:, 1], [[63, 0]] - points[:, 1] * [1, -1])


def test_landmark_flip_mirrors_the_68_point_template():
    # 1-based template numbers (Figure D): jaw ends, brows, nostrils, eye corners, mouth corners
    # and both lips swap sides; the midline (chin 9, nose 28-31 and 34, lip centres) stays.
    pairs = {1: 17, 5: 13, 18: 27, 22: 23, 32: 36, 33: 35, 37: 46, 38: 45, 39: 44, 40: 43,
             41: 48, 42: 47, 49: 55, 50: 54, 56: 60, 61: 65, 62: 64, 66: 68}
    pairs.update({v: k for k, v in pairs.items()})
    pairs.update({i: i for i in (9, 28, 29, 30, 31, 34, 52, 58, 63, 67)})
    for number, other in pairs.items():
        assert STYLE.landmark_flip_map[number - 1] + 1 == other
    assert sorted(STYLE.landmark_flip_map) == list(range(L))
    assert STYLE.landmark_names[19] == "brow_20" and len(set(STYLE.landmark_names)) == L


def test_bad_takes_are_rejected_with_their_reason(processed, examples):
    out, summary = processed
    rejected = preprocess.read_rejected(out)
    assert {r["clip"]: r["reason"] for r in rejected} == BAD
    assert summary["rejected_by_reason"] == {reason: 1 for reason in BAD.values()}
    assert summary["accepted_clips"] == GOOD and summary["examples"] == COPIES * GOOD
    ids = {ex[features.CLIP_ID].decode().split("#")[0]
           for s in preprocess.SPLITS for ex in examples[s]}
    assert len(ids) == GOOD and not ids & set(BAD)
    assert summary["class_names"] == list(classes.EMOTIONS)


def test_faces_output_validates_against_the_schema(processed):
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.utils import io_utils
    out, _ = processed
    schema = io_utils.parse_pbtxt_file(SCHEMA, schema_pb2.Schema())
    stats = tfdv.generate_statistics_from_tfrecord(os.path.join(out, "Split-*", "*.gz"))
    anomalies = tfdv.validate_statistics(stats, schema)
    assert not anomalies.anomaly_info, anomalies.anomaly_info
