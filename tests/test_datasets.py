"""The dataset style descriptions (amc_tf.data.datasets): consistent fields, the synthetic writer
read back by its own adapter, class names, lookups, and no string switches on dataset names."""
import ast
import glob
import json
import os

import numpy as np
import pytest

from amc_tf.data import classes, clip_rules, datasets, features

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STYLES = [datasets.get(name) for name in datasets.names()]


@pytest.mark.parametrize("style", STYLES, ids=datasets.names())
def test_fields_are_consistent(style):
    k = style.num_keypoints
    assert k == len(style.keypoint_names) == len(set(style.keypoint_names))
    assert len(style.paper_keypoint_ids) == k
    assert style.num_landmarks == len(style.landmark_names) == len(set(style.landmark_names))
    assert [style.landmark_names[i] for i in style.paper_keypoint_ids] == \
        list(style.keypoint_names)
    # Both flip maps mirror twice to the identity, and agree on the keypoints.
    landmark_flip = style.landmark_flip_map
    assert sorted(landmark_flip) == list(range(style.num_landmarks))
    assert [landmark_flip[i] for i in landmark_flip] == list(range(style.num_landmarks))
    ids = style.paper_keypoint_ids
    assert [ids[style.flip_map[j]] for j in range(k)] == [landmark_flip[i] for i in ids]
    # The flip map is a permutation of the keypoints that undoes itself (mirroring twice).
    assert sorted(style.flip_map) == list(range(k))
    assert [style.flip_map[j] for j in style.flip_map] == list(range(k))
    points = np.random.default_rng(0).uniform(0, 63, (4, k, 2))
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    once = clip_rules.flip(frames, points, style.flip_map)
    np.testing.assert_allclose(clip_rules.flip(*once, style.flip_map)[1], points)
    assert 0 <= style.frames_before < features.NUM_FRAMES
    assert 1 <= style.default_num_classes <= len(style.vocabulary)
    assert style.class_names() == list(style.vocabulary[:style.default_num_classes])
    assert style.strides and all(s >= 1 for s in style.strides)
    assert 0.0 <= style.flip_probability <= 1.0
    assert style.raw_layout and style.input_pattern
    assert datasets.get(style.name) is style


def test_gesture_flip_swaps_left_and_right_joints():
    style = datasets.get("gestures")
    names = style.keypoint_names
    for j, source in enumerate(style.flip_map):
        mirrored = names[j].replace("l_", "#").replace("r_", "l_").replace("#", "r_")
        assert names[source] == mirrored


@pytest.mark.parametrize("style", STYLES, ids=datasets.names())
def test_synthetic_writer_output_is_read_by_its_own_adapter(style, tmp_path):
    raw = str(tmp_path / style.name)
    written = style.write_synthetic(raw, clips=2, seed=0, num_classes=2, num_subjects=1)
    refs = style.list_clips(raw)
    assert sorted(r["clip"] for r in refs) == sorted(written)
    # ExampleGen's fingerprint pattern sees one annotation file per clip.
    assert len(glob.glob(os.path.join(raw, style.input_pattern))) == len(written)
    names = style.class_names(raw_dir=raw)
    for ref in refs:
        clip = style.load_clip(ref, names, features.NUM_FRAMES)
        assert clip.label in (0, 1) and len(clip.frames) == len(clip.points)
        made = {}
        for flipped in (False, True):
            video, points, landmarks = clip_rules.make_clip(style, clip, 1, flipped)
            assert video.shape == (features.NUM_FRAMES, features.FRAME_SIZE,
                                   features.FRAME_SIZE, 3)
            assert points.shape == (features.NUM_FRAMES, 2 * style.num_keypoints)
            assert landmarks.shape == (features.NUM_FRAMES, 2 * style.num_landmarks)
            assert np.isfinite(points).all() and np.isfinite(landmarks).all()
            landmarks = landmarks.reshape(features.NUM_FRAMES, -1, 2)
            np.testing.assert_array_equal(
                landmarks[:, list(style.paper_keypoint_ids)].reshape(points.shape), points)
            made[flipped] = landmarks
        # A flipped clip's landmark i is landmark landmark_flip_map[i] of the plain one, mirrored.
        expected = made[False][:, list(style.landmark_flip_map)]
        np.testing.assert_allclose(made[True][..., 0], features.FRAME_SIZE - 1 - expected[..., 0],
                                   atol=1e-4)
        np.testing.assert_allclose(made[True][..., 1], expected[..., 1], atol=1e-4)


def test_parse_examples_returns_the_landmarks_when_asked(tmp_path):
    import fixtures
    pattern = fixtures.write_clips(str(tmp_path), 3, 2, 5, seed=0)
    batch = next(iter(features.make_dataset(pattern, 5, 3, shuffle=False, repeat=False,
                                            num_landmarks=5)))
    assert batch[features.LANDMARKS].shape == (3, features.NUM_FRAMES, 2 * 5)
    np.testing.assert_array_equal(batch[features.LANDMARKS], batch[features.KEYPOINTS])
    plain = next(iter(features.make_dataset(pattern, 5, 3, shuffle=False, repeat=False)))
    assert features.LANDMARKS not in plain


def test_unknown_dataset_names_the_choices():
    for name in ("mnist", None, "Gestures"):
        with pytest.raises(ValueError, match=r"unknown dataset .*; choose from gestures, faces"):
            datasets.get(name)
    assert datasets.names() == ("gestures", "faces")


def test_unknown_dataset_fails_before_any_clip_is_read(tmp_path):
    from amc_tf.data import preprocess
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        preprocess.plan_clips("mnist", str(tmp_path), preprocess.PreprocessOptions())
    with pytest.raises(FileNotFoundError, match=r"no faces clips .*<subject>/<emotion>/<take>"):
        preprocess.plan_clips("faces", str(tmp_path), preprocess.PreprocessOptions())


def test_class_names_declared_by_the_raw_dir_or_the_defaults(tmp_path):
    gestures, faces = datasets.get("gestures"), datasets.get("faces")
    assert gestures.class_names(num_classes=24) == list(classes.GESTURE_CLASSES)
    assert gestures.class_names(raw_dir=str(tmp_path)) == gestures.class_names()  # no classes.txt
    for bad in (0, 25):
        with pytest.raises(ValueError, match="gestures has 1..24 classes"):
            gestures.class_names(num_classes=bad)
    (tmp_path / classes.CLASSES_FILE).write_text("up\ndown\n\nleft\n")
    assert gestures.class_names(raw_dir=str(tmp_path)) == ["up", "down", "left"]
    assert gestures.class_names(raw_dir=str(tmp_path), num_classes=2) == ["up", "down"]
    with pytest.raises(ValueError, match="classes.txt lists 3 classes"):
        gestures.class_names(raw_dir=str(tmp_path), num_classes=4)
    # Faces cannot declare classes: the emotion folders are MUG's six emotions.
    assert faces.class_names(raw_dir=str(tmp_path)) == list(classes.EMOTIONS)
    assert faces.class_names(num_classes=2) == ["anger", "disgust"]
    with pytest.raises(ValueError, match="faces has 1..6 classes"):
        faces.class_names(num_classes=7)
    (tmp_path / classes.CLASSES_FILE).write_text("\n")
    with pytest.raises(ValueError, match="lists no class names"):
        gestures.class_names(raw_dir=str(tmp_path))


def test_augmentation_defaults_come_from_the_style():
    from amc_tf.data import preprocess
    style = datasets.get("faces")
    resolved = preprocess.PreprocessOptions().with_defaults_of(style)
    assert (resolved.strides, resolved.flip_probability) == (style.strides,
                                                             style.flip_probability)
    explicit = preprocess.PreprocessOptions(strides=[2], flip_probability=0.0)
    assert explicit.with_defaults_of(style) == explicit
    assert explicit.strides == (2,)


def test_read_summary_names_the_missing_file(tmp_path):
    from amc_tf.data import preprocess
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "summary.json")):
        preprocess.read_summary(str(tmp_path))
    (tmp_path / "summary.json").write_text(json.dumps({"dataset": "faces"}))
    with pytest.raises(ValueError, match=r"summary.json lacks \['class_names'\]"):
        preprocess.read_summary(str(tmp_path))
    summary = {"dataset": "faces", "class_names": list(classes.EMOTIONS), "examples": 3}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert preprocess.read_summary(str(tmp_path)) == summary


def _names_a_style(node):
    if isinstance(node, ast.Constant):
        return node.value in datasets.names()
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_names_a_style(e) for e in node.elts)
    return False


def style_switches(source, path="<source>"):
    """Comparisons with a dataset style's name (`dataset == "faces"`, `in ("gestures", ...)`)
    and dicts keyed by style names: what the descriptions replace."""
    found = []
    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.Compare) and any(
                _names_a_style(o) for o in [node.left, *node.comparators]):
            found.append(f"{path}:{node.lineno}")
        elif isinstance(node, ast.Dict) and any(_names_a_style(k) for k in node.keys if k):
            found.append(f"{path}:{node.lineno}")
    return found


def test_no_string_switch_on_dataset_names_in_amc_tf():
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, "amc_tf", "**", "*.py"), recursive=True)):
        with open(path) as f:
            found += style_switches(f.read(), os.path.relpath(path, ROOT))
    assert not found, "switches on dataset names (read a datasets.DatasetStyle instead):\n" + \
        "\n".join(found)


def test_the_switch_check_sees_switches():
    assert style_switches('if dataset == "faces":\n    pass\n')
    assert style_switches('ok = name not in ("gestures", "faces")\n')
    assert style_switches('NUM_KEYPOINTS = {"faces": 11, "gestures": 9}\n')
    assert not style_switches('style = get("gestures")\nif dataset == other:\n    pass\n')
