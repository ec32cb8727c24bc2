"""Hardened raw-data ingestion (issue 13): numbers that overflow float32 or leave the frame, stale
outputs, memory caps, layout edge cases, and a seeded fuzz run of the real Beam preprocessing
(DirectRunner, in-process) in which every broken clip must be rejected with its own reason."""
import gzip
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from amc_tf.data import adapters, classes, clip_rules, datasets, features, preprocess, synthetic

GESTURES, FACES = datasets.get("gestures"), datasets.get("faces")
W, H = synthetic.GESTURE_FRAME_W, synthetic.GESTURE_FRAME_H
FACE_SIZE = 128
# Peak memory of one in-process preprocessing run of the adversarial clips below. A run of a few
# normal clips peaks at about 300 MiB (Beam, OpenCV, NumPy); decoding everything as before took
# several GiB on these inputs (600 VGA frames, 40 frames over the pixel cap, a 20,000 px crop).
PEAK_RSS_BOUND_MIB = 1024


# --- helpers --------------------------------------------------------------------------------------

def _varint(buf, i):
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def _fields(buf):
    """(field number, payload) of a protobuf message's length-delimited and varint fields."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        if key & 7 == 2:
            n, i = _varint(buf, i)
            yield key >> 3, buf[i:i + n]
            i += n
        elif key & 7 == 0:
            value, i = _varint(buf, i)
            yield key >> 3, value
        else:
            raise ValueError(f"unexpected wire type {key & 7}")


def _parse_example(data):
    """A serialized tf.train.Example as {name: bytes | float32 array | int list}, without TF."""
    parsed = {}
    for _, message in _fields(data):
        for _, entry in _fields(message):
            entry = dict(_fields(entry))
            for kind, values in _fields(entry[2]):
                payload = b"".join(v for _, v in _fields(values))
                if kind == 1:
                    parsed[entry[1].decode()] = payload
                elif kind == 2:
                    parsed[entry[1].decode()] = np.frombuffer(payload, "<f4")
                else:
                    ints, i = [], 0
                    while i < len(payload):
                        value, i = _varint(payload, i)
                        ints.append(value)
                    parsed[entry[1].decode()] = ints
    return parsed


def _read_split(out, split):
    """Every example in out/Split-<split>/*.gz (TFRecord framing read by hand)."""
    examples = []
    folder = preprocess.split_dir(out, split)
    for name in sorted(os.listdir(folder)):
        data = gzip.open(os.path.join(folder, name)).read()
        i = 0
        while i < len(data):
            (length,) = struct.unpack("<Q", data[i:i + 8])
            examples.append(_parse_example(data[i + 12:i + 12 + length]))
            i += 16 + length
    return examples


def _outcome(style, ref, names, copies=2):
    """DecodeAndPreprocess on one ref, outside a pipeline: ("accepted", examples) or
    (reason, detail)."""
    options = preprocess.PreprocessOptions(augment_copies=copies).with_defaults_of(style)
    dofn = preprocess.DecodeAndPreprocess(style.name, names, options)
    dofn.setup()
    out = list(dofn.process(dict(ref, split="train")))
    rejected = [o.value for o in out if getattr(o, "tag", None) == "rejected"]
    if rejected:
        return rejected[0]["reason"], rejected[0]["detail"]
    return "accepted", [o[1] for o in out if isinstance(o, tuple)]


def _ref(style, raw, clip):
    return {r["clip"]: r for r in style.list_clips(raw)}[clip]


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _write_video(path, frames):
    synthetic._write_video(path, frames, synthetic.GESTURE_FPS)


@pytest.fixture(scope="module")
def gesture_raw(tmp_path_factory):
    raw = str(tmp_path_factory.mktemp("gestures_unit"))
    synthetic.write_gestures(raw, clips=2, seed=7, num_classes=2, num_subjects=1)
    return raw


def _gesture_clip(raw, name, joints=None, **changes):
    """A copy of raw's first clip as subject00/<name>, its joints replaced or changed."""
    good = sorted(r for r in GESTURES.list_clips(raw) if r["clip"].endswith("raise_both_arms"))[0]
    annotation = json.load(open(good["annotations"]))
    if joints is not None:
        annotation["joints"] = joints
    annotation.update(changes)
    stem = os.path.join(raw, "subject00", name)
    shutil.copy(good["video"], stem + ".avi")
    _write(stem + ".json", json.dumps(annotation).encode())
    return f"subject00/{name}", annotation


def _good_joints(raw):
    ref = sorted(r for r in GESTURES.list_clips(raw) if r["clip"].endswith("raise_both_arms"))[0]
    return np.asarray(json.load(open(ref["annotations"]))["joints"])


# --- defect 1: numbers that overflow float32 or do not belong to the frame -------------------------

def test_joints_overflowing_float32_are_rejected(gesture_raw):
    """1e39 is finite in float64 but inf in float32 (the stored dtype): it used to become inf
    keypoints and NaN velocities in the examples."""
    names = GESTURES.class_names(gesture_raw)
    joints = _good_joints(gesture_raw)
    joints[40, 3] = 1e39
    clip, _ = _gesture_clip(gesture_raw, "overflow", joints.tolist())
    reason, detail = _outcome(GESTURES, _ref(GESTURES, gesture_raw, clip), names)
    assert reason == "nan_annotations" and "float32" in detail and "[40]" in detail


def test_joints_far_outside_the_frame_are_rejected(gesture_raw):
    names = GESTURES.class_names(gesture_raw)
    joints = _good_joints(gesture_raw)
    joints[:, 0::2] += 5000.0  # every x shifted by thousands of pixels
    clip, _ = _gesture_clip(gesture_raw, "shifted_far", joints.tolist())
    reason, detail = _outcome(GESTURES, _ref(GESTURES, gesture_raw, clip), names)
    assert reason == "keypoints_out_of_frame" and f"{W}x{H}" in detail
    # Within one frame size but with the chest's crop box entirely right of the frame: used to be
    # accepted as a flat single-colour video.
    joints = _good_joints(gesture_raw)
    joints[:, 0::2] += W
    assert joints[:, 0::2].max() <= 2 * W
    clip, _ = _gesture_clip(gesture_raw, "shifted_off_crop", joints.tolist())
    assert _outcome(GESTURES, _ref(GESTURES, gesture_raw, clip), names)[0] == "crop_outside_frame"


def test_face_landmarks_overflowing_or_spread_are_rejected(tmp_path):
    raw = str(tmp_path / "faces")
    synthetic.write_faces(raw, clips=1, seed=2, num_classes=1, num_subjects=1)
    take = os.path.join(raw, "subject00", "anger", "take000")
    header, *rows = open(os.path.join(take, "openface.csv")).read().splitlines()
    names = [h.strip() for h in header.split(",")]
    table = np.array([[float(c) for c in row.split(",")] for row in rows])
    x = [names.index(f"x_{i}") for i in range(68)]
    y = [names.index(f"y_{i}") for i in range(68)]

    def variant(name, change):
        dst = os.path.join(raw, "subject00", "anger", name)
        shutil.copytree(take, dst)
        values = table.copy()
        change(values)
        lines = [header] + [", ".join(f"{v:.6g}" for v in row) for row in values]
        _write(os.path.join(dst, "openface.csv"), ("\n".join(lines) + "\n").encode())
        return _outcome(FACES, _ref(FACES, raw, f"subject00/anger/{name}"), classes.EMOTIONS)

    def overflow(values):
        values[50, x[30]] = 3.5e38 * 10

    def spread(values):  # 4x the face around its centre: still within one frame size
        for cols in (x, y):
            centre = values[:, cols].mean(axis=1, keepdims=True)
            values[:, cols] = centre + 4 * (values[:, cols] - centre)

    def shifted(values):
        values[:, x] += 3000

    assert variant("overflow", overflow)[0] == "nan_annotations"
    reason, detail = variant("spread", spread)
    assert reason == "crop_size_out_of_range" and f"{FACE_SIZE}x{FACE_SIZE}" in detail
    assert variant("shifted", shifted)[0] == "keypoints_out_of_frame"
    assert variant("unchanged", lambda values: None)[0] == "accepted"


def test_non_finite_examples_are_never_written(gesture_raw, monkeypatch):
    """The last guard: whatever slipped past the checks, no non-finite feature is written."""
    names = GESTURES.class_names(gesture_raw)
    ref = GESTURES.list_clips(gesture_raw)[0]
    made = clip_rules.make_clips

    def poisoned(style, clip, copies):
        out = made(style, clip, copies)
        out[-1][2][5, 3] = np.inf  # one landmark of the last copy
        return out

    monkeypatch.setattr(clip_rules, "make_clips", poisoned)
    reason, detail = _outcome(GESTURES, ref, names)
    assert reason == "non_finite_example" and features.LANDMARKS in detail


# --- defect 2: a re-run into an existing OUT ------------------------------------------------------

def test_non_empty_out_is_refused_and_a_failed_run_leaves_it_intact(gesture_raw, tmp_path,
                                                                    monkeypatch):
    out = tmp_path / "out"
    (out / "Split-train").mkdir(parents=True)
    (out / "Split-train" / "data_tfrecord-00000-of-00001.gz").write_bytes(b"old shard")
    with pytest.raises(FileExistsError, match=f"{out} is not empty: pass --overwrite"):
        preprocess.run_preprocess("gestures", gesture_raw, str(out))

    def failing(pipeline, dataset, raw_dir, out_dir, options):
        os.makedirs(os.path.join(out_dir, "Split-train"))
        _write(os.path.join(out_dir, "Split-train", "half.gz"), b"half-written")
        raise RuntimeError("worker lost")

    monkeypatch.setattr(preprocess, "build_pipeline", failing)
    with pytest.raises(RuntimeError, match="worker lost"):
        preprocess.run_preprocess("gestures", gesture_raw, str(out), overwrite=True)
    assert os.listdir(out / "Split-train") == ["data_tfrecord-00000-of-00001.gz"]
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no partial sibling left behind


def test_cli_passes_overwrite(tmp_path, monkeypatch):
    from amc_app import cli
    seen = {}
    monkeypatch.setattr(preprocess, "run_preprocess",
                        lambda *args, **kwargs: seen.update(kwargs) or {
                            "accepted_clips": 0, "examples": 0, "rejected_clips": 0,
                            "rejected_by_reason": {},
                            "splits": {s: {"examples": 0} for s in preprocess.SPLITS}})
    argv = ["preprocess", "--dataset", "gestures", "--raw", str(tmp_path), "--out",
            str(tmp_path / "out")]
    assert cli.main(argv) == 0 and seen["overwrite"] is False
    assert cli.main(argv + ["--overwrite"]) == 0 and seen["overwrite"] is True


# --- defect 3: memory ---------------------------------------------------------------------------

def test_crop_larger_than_the_frame_keeps_memory_of_one_frame():
    """A box larger than the frame is shrunk with the frame, not drawn on a side x side canvas
    (a 30,000 px box was a 2.5 GiB canvas); the picture lands where the points do."""
    import resource
    import cv2
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:, :50] = 200
    centre = np.array([[[49.5, 49.5]]])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    video, mapped = clip_rules.crop_and_resize(frame[None], centre, (-14950, -14950, 30000))
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 200  # MiB
    np.testing.assert_allclose(mapped[0, 0], [31.5, 31.5])
    assert np.abs(video.astype(int) - 100).max() <= 1  # the whole frame in a pixel: its mean
    # Just larger than the frame: the same picture as the canvas path, within a level or two.
    box = (-60, -60, 220)
    video, mapped = clip_rules.crop_and_resize(frame[None], centre, box)
    np.testing.assert_allclose(mapped[0, 0], [31.5, 31.5])
    canvas = cv2.warpAffine(frame, np.float32([[1, 0, 60], [0, 1, 60]]), (220, 220),
                            flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    reference = cv2.resize(canvas, (64, 64), interpolation=cv2.INTER_AREA)
    difference = np.abs(video[0].astype(int) - reference)
    assert difference.mean() < 2 and (difference > 20).any(axis=(0, 2)).sum() <= 2  # the edge
    # Within the frame's area the canvas path is kept, exactly as before (replicated edges).
    video, _ = clip_rules.crop_and_resize(frame[None], np.zeros((1, 1, 2)), (-50, 0, 100), 50)
    assert (video[0, :, :49] == 200).all()


def _adversarial_raws(root):
    """Raw dirs of clips that used to cost GiBs: gestures (a 600-frame VGA video with 100 and
    with all 600 frames annotated; a frame over the pixel cap) and faces (landmarks spread 250x;
    frame images over the pixel cap). Returns {dataset: (raw, {clip: expected outcome})}."""
    import cv2
    gestures, faces = os.path.join(root, "gestures"), os.path.join(root, "faces")
    synthetic.write_gestures(gestures, clips=1, seed=1, num_classes=1, num_subjects=1)
    joints = np.asarray(json.load(open(os.path.join(
        gestures, "subject00", "clip00000_raise_both_arms.json")))["joints"])
    os.makedirs(os.path.join(gestures, "subject01"))
    writer = cv2.VideoWriter(os.path.join(gestures, "subject01", "long.avi"),
                             cv2.VideoWriter_fourcc(*synthetic.VIDEO_FOURCC), 20, (640, 480))
    background = np.zeros((480, 640, 3), np.uint8)
    background[:] = np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None]
    for t in range(600):
        frame = background.copy()
        frame[100:200, t % 500:t % 500 + 100] = (0, 0, 255)
        writer.write(frame)
    writer.release()
    shutil.copy(os.path.join(gestures, "subject01", "long.avi"),
                os.path.join(gestures, "subject01", "long_all_annotated.avi"))
    _write_video(os.path.join(gestures, "subject01", "huge_frame.avi"),
                 np.zeros((1, 4100, 4200, 3), np.uint8))
    rows = np.resize(joints, (600, joints.shape[1]))
    for name, n in (("long", 100), ("long_all_annotated", 600), ("huge_frame", 40)):
        _write(os.path.join(gestures, "subject01", name + ".json"), json.dumps(
            {"label": "raise_both_arms", "joints": rows[:n].tolist()}).encode())

    synthetic.write_faces(faces, clips=1, seed=1, num_classes=1, num_subjects=1)
    good = os.path.join(faces, "subject00", "anger", "take000")
    header, *lines = open(os.path.join(good, "openface.csv")).read().splitlines()
    names = [h.strip() for h in header.split(",")]
    table = np.array([[float(c) for c in line.split(",")] for line in lines])
    spread = os.path.join(faces, "subject01", "anger", "spread")
    shutil.copytree(good, spread)
    for axis in "xy":
        cols = [names.index(f"{axis}_{i}") for i in range(68)]
        centre = table[:, cols].mean(axis=1, keepdims=True)
        table[:, cols] = centre + 250 * (table[:, cols] - centre)
    _write(os.path.join(spread, "openface.csv"), ("\n".join(
        [header] + [", ".join(f"{v:.6g}" for v in row) for row in table]) + "\n").encode())
    huge = os.path.join(faces, "subject01", "anger", "huge_frames")
    shutil.copytree(good, huge)
    ok, png = cv2.imencode(".png", np.zeros((4100, 4200, 3), np.uint8))
    for name in os.listdir(huge):
        if name.endswith(".jpg"):
            os.remove(os.path.join(huge, name))
            _write(os.path.join(huge, name[:-4] + ".png"), png.tobytes())
    return {
        "gestures": (gestures, {"subject00/clip00000_raise_both_arms": "accepted",
                                "subject01/long": "accepted",
                                "subject01/long_all_annotated": "accepted",
                                "subject01/huge_frame": "too_large"}),
        "faces": (faces, {"subject00/anger/take000": "accepted",
                          "subject01/anger/spread": "keypoints_out_of_frame",
                          "subject01/anger/huge_frames": "too_large"}),
    }


def test_peak_memory_stays_bounded_on_adversarial_clips(tmp_path):
    raws = _adversarial_raws(str(tmp_path))
    code = textwrap.dedent("""
        import json, os, re, resource, sys
        from amc_tf.data import preprocess
        outcomes = {}
        for dataset, raw, out in json.loads(sys.argv[1]):
            preprocess.run_preprocess(dataset, raw, out)
            outcomes.update({r["clip"]: r["reason"] for r in preprocess.read_rejected(out)})
            outcomes["examples_" + dataset] = preprocess.read_summary(out)["examples"]
        # ru_maxrss survives exec (it would report pytest's own size): this process's VmHWM.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if os.path.exists("/proc/self/status"):
            peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read())[1])
        print(json.dumps({"peak_kib": peak, "outcomes": outcomes}))
    """)
    runs = [(name, raw, str(tmp_path / f"out_{name}")) for name, (raw, _) in raws.items()]
    result = subprocess.run([sys.executable, "-c", code, json.dumps(runs)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    logging.getLogger(__name__).warning("adversarial preprocessing peak RSS %.0f MiB",
                                        report["peak_kib"] / 1024)
    for name, (_, expected) in raws.items():
        rejected = {c: r for c, r in expected.items() if r != "accepted"}
        assert {c: report["outcomes"].get(c) for c in rejected} == rejected
        assert report["outcomes"][f"examples_{name}"] == len(expected) - len(rejected)
    assert report["peak_kib"] / 1024 < PEAK_RSS_BOUND_MIB, report


def test_only_the_window_frames_are_decoded(gesture_raw, monkeypatch):
    """A long clip: frames outside every copy's window are grabbed, never decoded and kept."""
    import cv2
    names = GESTURES.class_names(gesture_raw)
    ref = GESTURES.list_clips(gesture_raw)[0]
    decoded = []
    real = cv2.VideoCapture

    class Counting:
        def __init__(self, path):
            self._capture = real(path)

        def read(self):
            decoded.append(1)
            return self._capture.read()

        def __getattr__(self, name):
            return getattr(self._capture, name)

    monkeypatch.setattr(cv2, "VideoCapture", Counting)
    clip = GESTURES.load_clip(ref, names, 32, lazy=True)
    made = clip_rules.make_clips(GESTURES, clip, [(1, False), (1, True)])
    assert len(made) == 2 and len(decoded) == 32 < clip.num_frames


def test_caps_reject_before_decoding(gesture_raw, tmp_path):
    names = GESTURES.class_names(gesture_raw)
    joints = _good_joints(gesture_raw)
    many = np.resize(joints, (adapters.MAX_FRAMES_PER_CLIP + 1, joints.shape[1]))
    clip, _ = _gesture_clip(gesture_raw, "too_many", many.tolist())
    reason, detail = _outcome(GESTURES, _ref(GESTURES, gesture_raw, clip), names)
    assert reason == "too_large" and str(adapters.MAX_FRAMES_PER_CLIP) in detail
    # A PNG header over the pixel cap is rejected from its first bytes.
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 5000, 4000)
    assert adapters.image_size(png) == (5000, 4000)
    path = str(tmp_path / "big.png")
    _write(path, png + b"\0" * 100)
    with pytest.raises(adapters.RejectedClip, match="too_large"):
        adapters._image_header(path)


# --- defect 4: layout edge cases ------------------------------------------------------------------

def test_files_at_unexpected_depths_are_listed_and_rejected(tmp_path):
    raw = str(tmp_path / "raw")
    synthetic.write_gestures(raw, clips=2, seed=3, num_classes=2, num_subjects=1)
    video = open(os.path.join(raw, "subject00", "clip00000_raise_both_arms.avi"), "rb").read()
    _write(os.path.join(raw, "loose.avi"), video)
    _write(os.path.join(raw, "subject00", "nested", "deeper.json"), b"{}")
    for ignored in ("README.md", ".hidden/x/clip.json", "subject00/.DS_Store",
                    "subject00/notes.txt", "subject00/._clip.json"):
        _write(os.path.join(raw, ignored), b"not data")
    for ext in (".avi", ".mp4", ".json"):  # one clip, two videos: which one is meant?
        _write(os.path.join(raw, "subject00", "twice" + ext), video if ext != ".json" else b"{}")
    refs = {r["clip"]: r for r in GESTURES.list_clips(raw)}
    assert sorted(refs) == ["loose", "subject00/clip00000_raise_both_arms",
                            "subject00/clip00001_raise_one_arm", "subject00/nested/deeper",
                            "subject00/twice"]
    names = GESTURES.class_names(raw)
    for clip, subject in (("loose", ""), ("subject00/nested/deeper", "subject00"),
                          ("subject00/twice", "subject00")):
        assert refs[clip]["subject"] == subject
        reason, detail = _outcome(GESTURES, refs[clip], names)
        assert reason == "unexpected_layout" and refs[clip]["path"] in detail
    planned = {r["clip"]: r["split"] for r in preprocess.plan_clips(
        "gestures", raw, preprocess.PreprocessOptions())}
    assert planned["loose"] == "train" and len(planned) == 5

    faces = str(tmp_path / "faces")
    synthetic.write_faces(faces, clips=1, seed=3, num_classes=1, num_subjects=1)
    take = os.path.join(faces, "subject00", "anger", "take000")
    shutil.copy(os.path.join(take, "img_0000.jpg"), os.path.join(faces, "subject00", "anger"))
    os.makedirs(os.path.join(take, "sub"))
    shutil.copy(os.path.join(take, "img_0000.jpg"), os.path.join(take, "sub", "x.jpg"))
    refs = {r["clip"]: r for r in FACES.list_clips(faces)}
    assert sorted(refs) == ["subject00/anger", "subject00/anger/take000",
                            "subject00/anger/take000/sub"]
    for clip in ("subject00/anger", "subject00/anger/take000/sub"):
        assert _outcome(FACES, refs[clip], classes.EMOTIONS)[0] == "unexpected_layout"
    assert _outcome(FACES, refs["subject00/anger/take000"], classes.EMOTIONS)[0] == "accepted"


def test_upper_case_extensions_are_recognized(tmp_path):
    raw = str(tmp_path / "raw")
    synthetic.write_gestures(raw, clips=1, seed=3, num_classes=1, num_subjects=1)
    stem = os.path.join(raw, "subject00", "clip00000_raise_both_arms")
    os.rename(stem + ".json", stem + ".JSON")
    os.rename(stem + ".avi", stem + ".AVI")
    (ref,) = GESTURES.list_clips(raw)
    assert ref["annotations"] == stem + ".JSON" and ref["video"] == stem + ".AVI"
    assert _outcome(GESTURES, ref, GESTURES.class_names(raw))[0] == "accepted"

    faces = str(tmp_path / "faces")
    synthetic.write_faces(faces, clips=1, seed=3, num_classes=1, num_subjects=1)
    take = os.path.join(faces, "subject00", "anger", "take000")
    os.rename(os.path.join(take, "openface.csv"), os.path.join(take, "OpenFace.CSV"))
    (ref,) = FACES.list_clips(faces)
    assert ref["annotations"] == [os.path.join(take, "OpenFace.CSV")]
    assert all(p.endswith(".jpg") for p in ref["frames"])
    assert _outcome(FACES, ref, classes.EMOTIONS)[0] == "accepted"


def test_glob_metacharacters_in_the_raw_path_are_literal(tmp_path):
    raw = str(tmp_path / "raw[1]?*")
    written = synthetic.write_gestures(raw, clips=2, seed=3, num_classes=2, num_subjects=1)
    _write(str(tmp_path / "raw1x" / "subject00" / "decoy.json"), b"{}")  # what [1]? would match
    assert [r["clip"] for r in GESTURES.list_clips(raw)] == written
    from apache_beam.io.filesystems import FileSystems
    pattern = adapters.escape_glob(raw) + "/**"
    assert len(FileSystems.match([pattern])[0].metadata_list) == 5  # classes.txt + 2 x 2 files


def test_frame_images_are_in_natural_order(tmp_path):
    raw = str(tmp_path / "faces")
    synthetic.write_faces(raw, clips=1, seed=3, num_classes=1, num_subjects=1)
    take = os.path.join(raw, "subject00", "anger", "take000")
    count = len([n for n in os.listdir(take) if n.endswith(".jpg")])
    for t in range(count):
        os.rename(os.path.join(take, f"img_{t:04d}.jpg"), os.path.join(take, f"img_{t}.jpg"))
    (ref,) = FACES.list_clips(raw)
    assert [os.path.basename(p) for p in ref["frames"]] == [f"img_{t}.jpg" for t in range(count)]
    assert adapters.natural_key("a9") < adapters.natural_key("a10") < adapters.natural_key("b1")
    assert sorted(["x_" + "9" * 5000, "x_1" + "0" * 5000], key=adapters.natural_key)[0][2] == "9"


def test_classes_file_bom_crlf_duplicates_and_encoding(tmp_path, caplog):
    path = tmp_path / classes.CLASSES_FILE
    path.write_bytes(b"\xef\xbb\xbfup\r\ndown\r\n\r\nleft\r\n")
    assert GESTURES.class_names(str(tmp_path)) == ["up", "down", "left"]
    assert GESTURES.class_names_source(str(tmp_path)) == str(path)
    path.write_bytes(b"up\ndown\nup\nleft\ndown\n")
    with pytest.raises(ValueError, match=r"classes.txt lists these class names more than once: "
                                         r"\['down', 'up'\]"):
        GESTURES.class_names(str(tmp_path))
    path.write_bytes("up\ncafé\n".encode("latin-1"))
    with pytest.raises(ValueError, match=f"{path} is not UTF-8 text"):
        GESTURES.class_names(str(tmp_path))
    path.unlink()
    with caplog.at_level(logging.WARNING):
        names = GESTURES.class_names(str(tmp_path))
    assert names == list(classes.GESTURE_CLASSES[:classes.DEFAULT_GESTURE_CLASSES])
    assert f"{path} does not exist: using the built-in gestures class names" in caplog.text
    assert GESTURES.class_names_source(str(tmp_path)) == \
        f"built-in vocabulary (no classes.txt in {tmp_path})"


def test_zero_byte_frames_and_non_utf8_annotations_get_their_reason(tmp_path):
    raw = str(tmp_path / "faces")
    synthetic.write_faces(raw, clips=2, seed=3, num_classes=2, num_subjects=1)
    anger, disgust = (os.path.join(raw, "subject00", e, "take000") for e in ("anger", "disgust"))
    _write(os.path.join(anger, "img_0005.jpg"), b"")
    csv_path = os.path.join(disgust, "openface.csv")
    _write(csv_path, open(csv_path, "rb").read().replace(b"frame", "främe".encode("latin-1")))
    refs = {r["clip"]: r for r in FACES.list_clips(raw)}
    reason, detail = _outcome(FACES, refs["subject00/anger/take000"], classes.EMOTIONS)
    assert reason == "corrupt_video" and "zero-byte" in detail and "img_0005.jpg" in detail
    reason, detail = _outcome(FACES, refs["subject00/disgust/take000"], classes.EMOTIONS)
    assert reason == "unreadable_annotations" and csv_path in detail and "UTF-8" in detail


# --- the fuzz run ----------------------------------------------------------------------------------

def _gesture_mutations(annotation, video, rng):
    """clip stem (relative to RAW) -> (expected reason, {extension: bytes})."""
    joints = annotation["joints"]

    def dump(**changes):
        return json.dumps(dict(annotation, **changes), ensure_ascii=False).encode()

    def clip(data):  # the good video with these annotations
        return {".avi": video, ".json": data}

    def with_cell(value):
        rows = [list(r) for r in joints]
        rows[int(rng.integers(len(rows)))][int(rng.integers(18))] = value
        return rows

    def shifted(dx):
        return [[v + dx if i % 2 == 0 else v for i, v in enumerate(r)] for r in joints]

    good = dump()
    literal = dump(joints=with_cell("@")).replace(b'"@"', rng.choice(
        [b"1e400", b"-Infinity", b"NaN"]))
    short = int(rng.integers(1, 32))
    cases = {
        "garbage_video": ("corrupt_video", {".avi": b"RIFF" + rng.bytes(4000), ".json": good}),
        "zero_byte_video": ("corrupt_video", {".avi": b"", ".json": good}),
        "truncated_video": ("truncated_video", {".avi": video[:len(video) // 4], ".json": good}),
        "joints_string": ("missing_annotations", clip(dump(joints="0, 1, 2"))),
        "joints_row_length": ("missing_annotations", clip(dump(
            joints=[r[:int(rng.integers(1, 18))] for r in joints]))),
        "joints_empty": ("too_short", clip(dump(joints=[]))),
        "joints_float32_overflow": ("nan_annotations", clip(dump(
            joints=with_cell(float(rng.uniform(1e39, 1e300)))))),
        "joints_literal_inf_nan": ("nan_annotations", clip(literal)),
        "joints_huge_int": ("nan_annotations", clip(dump(joints=with_cell(10 ** 400)))),
        "joints_nan_string": ("nan_annotations", clip(dump(joints=with_cell("NaN")))),
        "joints_null": ("nan_annotations", clip(dump(joints=with_cell(None)))),
        "joints_bool": ("nan_annotations", clip(dump(joints=with_cell(True)))),
        "joints_nested_list": ("nan_annotations", clip(dump(joints=with_cell([1.0, 2.0])))),
        "joints_deep_nesting": ("unreadable_annotations", clip(
            b'{"label": "raise_both_arms", "joints": ' + b"[" * 200000)),
        "joints_shifted_far": ("keypoints_out_of_frame", clip(dump(
            joints=shifted(float(rng.uniform(3 * W, 1e6)))))),
        "joints_shifted_off_crop": ("crop_outside_frame", clip(dump(joints=shifted(W)))),
        "too_many_frames": ("too_large", clip(dump(
            joints=(joints * (adapters.MAX_FRAMES_PER_CLIP // len(joints) + 1))))),
        "huge_annotation_file": ("too_large", clip(b" " * (adapters.MAX_ANNOTATION_BYTES + 1))),
        "too_short": ("too_short", clip(dump(joints=joints[:short]))),
        "no_joints": ("missing_annotations", clip(json.dumps(
            {"label": annotation["label"]}).encode())),
        "no_label": ("missing_annotations", clip(json.dumps({"joints": joints}).encode())),
        "annotation_list": ("missing_annotations", clip(b"[1, 2, 3]")),
        "label_list": ("unknown_label", clip(dump(label=["raise_both_arms"]))),
        "label_huge": ("unknown_label", clip(dump(label="x" * 100000))),
        "label_unknown": ("unknown_label", clip(dump(label="moonwalk"))),
        "invalid_json": ("unreadable_annotations", clip(good[:int(rng.integers(
            1, len(good) - 1))])),
        "latin1_json": ("unreadable_annotations", clip(dump(label="café").replace(
            "é".encode(), "é".encode("latin-1")))),
        "missing_video": ("missing_video", {".json": good}),
        "missing_annotations": ("missing_annotations", {".avi": video}),
        "bom_json": ("accepted", clip(b"\xef\xbb\xbf" + good)),
        "upper_case_extensions": ("accepted", {".AVI": video, ".JSON": good}),
    }
    subjects = ("subject00", "subject01")
    placed = {f"{subjects[int(rng.integers(2))]}/{name}": case for name, case in cases.items()}
    placed["loose_at_top"] = ("unexpected_layout", {".avi": video, ".json": good})
    placed["subject01/nested/too_deep"] = ("unexpected_layout", {".json": good})
    return placed


def _csv_rows(path):
    header, *rows = open(path, encoding="utf-8").read().splitlines()
    return header, [row.split(", ") for row in rows]


def _face_mutations(take, rng):
    """take folder (relative to RAW) -> (expected reason, function(folder) that breaks a copy of
    the good take)."""
    header, rows = _csv_rows(os.path.join(take, "openface.csv"))
    names = header.split(", ")
    x = [names.index(f"x_{i}") for i in range(68)]
    y = [names.index(f"y_{i}") for i in range(68)]
    frame = int(rng.integers(len(rows)))

    def write_csv(folder, rows, head=header, name="openface.csv", end="\n", encoding="utf-8"):
        text = end.join([head] + [", ".join(r) for r in rows]) + end
        _write(os.path.join(folder, name), text.encode(encoding))

    def set_cells(cols, values):
        def mutate(folder):
            new = [list(r) for r in rows]
            for c, v in zip(cols, values):
                new[frame][c] = v
            write_csv(folder, new)
        return mutate

    def map_landmarks(change):
        def mutate(folder):
            table = np.array([[float(c) for c in r] for r in rows])
            change(table)
            write_csv(folder, [[f"{v:.6g}" for v in r] for r in table])
        return mutate

    def spread(table):
        for cols in (x, y):
            centre = table[:, cols].mean(axis=1, keepdims=True)
            table[:, cols] = centre + 4 * (table[:, cols] - centre)

    def shift(table):
        table[:, x] += rng.uniform(3 * FACE_SIZE, 1e5)

    def frame_file(data):
        return lambda folder: _write(os.path.join(folder, f"img_{frame:04d}.jpg"), data)

    def other_size(folder):
        import cv2
        _write(os.path.join(folder, f"img_{frame:04d}.jpg"),
               cv2.imencode(".jpg", np.zeros((64, 80, 3), np.uint8))[1].tobytes())

    def unpadded(folder):
        for t in range(len(rows)):
            os.rename(os.path.join(folder, f"img_{t:04d}.jpg"), os.path.join(folder, f"img_{t}.jpg"))

    def loose_frames(folder):  # the take's frames one level up, in the emotion folder
        for name in os.listdir(folder):
            shutil.move(os.path.join(folder, name), os.path.dirname(folder))
        os.rmdir(folder)

    garbage = [str(rng.choice(["abc", "", "--", "1e", "0x1F", "nan", "inf", "1,5"])) for _ in x]
    cases = {
        "zero_byte_frame": ("corrupt_video", frame_file(b"")),
        "garbage_frame": ("corrupt_video", frame_file(b"GIF8" + rng.bytes(3000))),
        "frame_other_size": ("corrupt_video", other_size),
        "csv_latin1": ("unreadable_annotations", lambda folder: write_csv(
            folder, rows, head=header.replace("frame", "främe"), encoding="latin-1")),
        "csv_stray_cr": ("unreadable_annotations", set_cells([x[3]], ["1\r2"])),
        "csv_nul_byte": ("nan_annotations", set_cells([x[3]], ["1\0" + "2"])),
        "csv_garbage_cells": ("nan_annotations", set_cells(x, garbage)),
        "csv_float32_overflow": ("nan_annotations", set_cells(
            [y[int(rng.integers(68))]], [f"{rng.uniform(3.5e38, 1e300):.6g}"])),
        "csv_no_face": ("nan_annotations", set_cells([names.index("success")], ["0"])),
        "csv_shifted": ("keypoints_out_of_frame", map_landmarks(shift)),
        "csv_spread": ("crop_size_out_of_range", map_landmarks(spread)),
        "csv_missing_columns": ("missing_annotations", lambda folder: write_csv(
            folder, [r[:x[0]] for r in rows], head=", ".join(names[:x[0]]))),
        "csv_header_only": ("missing_annotations", lambda folder: write_csv(folder, [])),
        "csv_long_row": ("too_large", set_cells([x[0]], ["1" + " " * 70000])),
        "csv_too_short": ("too_short", lambda folder: write_csv(folder, rows[:20])),
        "two_csvs": ("missing_annotations", lambda folder: write_csv(folder, rows,
                                                                     name="copy.csv")),
        "csv_bom_crlf": ("accepted", lambda folder: write_csv(
            folder, rows, head="\ufeff" + header, end="\r\n")),
        "csv_upper_case": ("accepted", lambda folder: os.rename(
            os.path.join(folder, "openface.csv"), os.path.join(folder, "OPENFACE.CSV"))),
        "unpadded_frame_names": ("accepted", unpadded),
    }
    placed = {f"subject00/anger/{name}": case for name, case in cases.items()}
    placed["subject00/fear/loose"] = ("unexpected_layout", loose_frames)
    placed["subject00/contempt/take000"] = ("unknown_label", lambda folder: None)
    return placed


def _build_fuzz_raws(root, seed=13):
    """A gestures and a faces raw dir with a few good clips and many broken ones; the gestures
    dir's name holds glob metacharacters. Returns {dataset: (raw, {clip: expected outcome})}."""
    rng = np.random.default_rng(seed)
    gestures = os.path.join(root, "gestures raw[1]?")
    good = synthetic.write_gestures(gestures, clips=4, seed=seed, num_classes=2, num_subjects=2)
    expected_g = {clip: "accepted" for clip in good}
    stem = os.path.join(gestures, good[0])
    annotation = json.load(open(stem + ".json"))
    video = open(stem + ".avi", "rb").read()
    for clip, (reason, files) in _gesture_mutations(annotation, video, rng).items():
        for ext, data in files.items():
            _write(os.path.join(gestures, clip + ext), data)
        expected_g[clip] = reason
    _write(os.path.join(gestures, "README.md"), b"ignored")
    _write(os.path.join(gestures, "subject00", ".DS_Store"), b"ignored")

    faces = os.path.join(root, "faces")
    good = synthetic.write_faces(faces, clips=2, seed=seed, num_classes=1, num_subjects=2)
    expected_f = {clip: "accepted" for clip in good}
    take = os.path.join(faces, good[0])
    for clip, (reason, mutate) in _face_mutations(take, rng).items():
        folder = os.path.join(faces, clip)
        shutil.copytree(take, folder)
        mutate(folder)
        expected_f[clip.rsplit("/", 1)[0] if reason == "unexpected_layout" else clip] = reason
    return {"gestures": (gestures, expected_g), "faces": (faces, expected_f)}


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory):
    """Both fuzz raw dirs through the real Beam pipeline, each into an OUT that holds a stale
    shard of an earlier run (so --overwrite is exercised too)."""
    root = str(tmp_path_factory.mktemp("fuzz"))
    results = {}
    for dataset, (raw, expected) in _build_fuzz_raws(root).items():
        out = os.path.join(root, f"out_{dataset}")
        record = clip_rules.encode_example({features.CLIP_ID: b"stale#0"})
        _write(os.path.join(preprocess.split_dir(out, "train"), "data_tfrecord-stale.gz"),
               gzip.compress(struct.pack("<Q", len(record)) + b"\0" * 4 + record + b"\0" * 4))
        _write(os.path.join(out, "stale.txt"), b"from an earlier run")
        with pytest.raises(FileExistsError):
            preprocess.run_preprocess(dataset, raw, out, augment_copies=2, seed=3)
        summary = preprocess.run_preprocess(dataset, raw, out, augment_copies=2, seed=3,
                                            eval_fraction=0.5, overwrite=True)
        results[dataset] = (raw, out, expected, summary)
    return results


@pytest.mark.parametrize("dataset", ["gestures", "faces"])
def test_fuzz_every_clip_gets_its_reason(fuzz_run, dataset):
    raw, out, expected, summary = fuzz_run[dataset]
    style = datasets.get(dataset)
    listed = style.list_clips(raw)
    rejected = {r["clip"]: r["reason"] for r in preprocess.read_rejected(out)}
    accepted = {c for c, r in expected.items() if r == "accepted"}
    assert {r["clip"] for r in listed} == set(expected)
    assert summary["accepted_clips"] + summary["rejected_clips"] == len(listed)
    assert rejected == {c: r for c, r in expected.items() if r != "accepted"}
    assert "unexpected_error" not in summary["rejected_by_reason"]
    examples = {s: _read_split(out, s) for s in preprocess.SPLITS}
    assert {e[features.CLIP_ID].decode().split("#")[0] for s in examples
            for e in examples[s]} == accepted
    assert summary["accepted_clips"] == len(accepted)


@pytest.mark.parametrize("dataset", ["gestures", "faces"])
def test_fuzz_output_is_finite_and_counted(fuzz_run, dataset):
    raw, out, _, summary = fuzz_run[dataset]
    style = datasets.get(dataset)
    assert sorted(os.listdir(out)) == ["Split-eval", "Split-train", "rejected", "summary.json"]
    total = 0
    for split in preprocess.SPLITS:
        examples = _read_split(out, split)  # the stale shard is gone, or this would fail
        assert len(examples) == summary["splits"][split]["examples"]
        total += len(examples)
        for ex in examples:
            assert len(ex[features.VIDEO]) == 32 * 64 * 64 * 3
            points, landmarks = ex[features.KEYPOINTS], ex[features.LANDMARKS]
            velocity = ex[features.VELOCITY]
            assert points.shape == (32 * 2 * style.num_keypoints,)
            assert landmarks.shape == (32 * 2 * style.num_landmarks,)
            assert velocity.shape == (31 * 2 * style.num_keypoints,)
            for values in (points, landmarks, velocity):
                assert np.isfinite(values).all()
            assert np.abs(landmarks).max() < 4 * features.FRAME_SIZE
            assert np.abs(velocity).max() <= 1.0
    assert total == summary["examples"] == 2 * summary["accepted_clips"]
    source = summary["class_names_source"]
    assert source == (os.path.join(raw, "classes.txt") if dataset == "gestures"
                      else "built-in vocabulary (faces labels are fixed by the layout)")
