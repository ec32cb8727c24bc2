"""Raw-data adapters: list the clips of a raw directory and load one clip, for both datasets
(each dataset style names its pair in `amc_tf.data.datasets`).

gestures (NATOPS-style), one clip per video + annotation pair:
    RAW/classes.txt                  class names, one per line (line i = motion_class i)
    RAW/<subject>/<clip>.avi         video (any OpenCV-readable container/codec; .mp4 also read)
    RAW/<subject>/<clip>.json        {"label": "<class name>", "joints": [[x0, y0, .., x8, y8], ..]}
                                     one row per frame, joints in `keypoints.GESTURE_JOINTS` order

faces (MUG-style: the MUG database's own folder layout plus OpenFace's FeatureExtraction CSV):
    RAW/<subject>/<emotion>/<take>/img_0000.jpg ...   frames (jpg or png, sorted by name)
    RAW/<subject>/<emotion>/<take>/<any name>.csv      OpenFace output for the take: columns
                                     x_0..x_67, y_0..y_67 (landmarks) and AUxx_r (AU intensities)

Loading never raises anything but `RejectedClip` for bad input, whose `reason` is one of REASONS.
Paths may be local or any Beam filesystem (gs://...).
"""

import csv
import io
import json
import os
import posixpath
import tempfile

import numpy as np

from amc_tf.data import classes, keypoints

VIDEO_EXTS = (".avi", ".mp4", ".mov", ".mkv")
IMAGE_EXTS = (".jpg", ".jpeg", ".png")

# Why a clip can be rejected (each is a Beam counter and a `reason` in the rejected records).
REASONS = {
    "corrupt_video": "the video (or a frame image) cannot be decoded",
    "truncated_video": "fewer decodable frames than annotated frames",
    "missing_video": "annotations without a video",
    "missing_annotations": "no annotation file, or it lacks required fields",
    "nan_annotations": "NaN/empty keypoints or AU intensities, or OpenFace reported no face",
    "unknown_label": "the label is not one of the dataset's classes",
    "too_short": "fewer than 32 frames (B.1)",
    "unexpected_error": "an unexpected exception while processing the clip",
}


class RejectedClip(Exception):
    """A raw clip that cannot become an example; `reason` is a key of REASONS."""

    def __init__(self, reason, detail):
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class RawClip:
    """One decoded raw clip: BGR frames (T, H, W, 3) uint8, all the style's landmarks (T, L, 2) in
    frame pixels, the class id, and (faces) the EMFACS AU intensities (T, A) for the peak rule."""

    def __init__(self, frames, points, label, aus=None):
        self.frames, self.points, self.label, self.aus = frames, points, label, aus


def _fs():
    from apache_beam.io.filesystems import FileSystems
    return FileSystems


def _match(pattern):
    result = _fs().match([pattern])[0]
    return sorted(m.path for m in result.metadata_list)


def read_bytes(path):
    with _fs().open(path, compression_type="uncompressed") as f:
        return f.read()


def _is_local(path):
    return "://" not in path


def _rel(path, root):
    return posixpath.relpath(path.replace(os.sep, "/"), root.replace(os.sep, "/").rstrip("/"))


def read_class_list(path):
    """The class names listed one per line in `path` (gestures' classes.txt), or None if there is
    no such file."""
    if not _fs().exists(path):
        return None
    names = [line.strip() for line in read_bytes(path).decode().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{path} lists no class names")
    return names


def list_gesture_clips(raw_dir):
    """The NATOPS-style clips of `raw_dir` as small dicts {"clip", "subject", "path", "video",
    "annotations"}, sorted by clip id.

    Only paths are listed here (cheap, at pipeline construction); clips are decoded in the workers.
    """
    raw_dir = raw_dir.rstrip("/")
    stems = {}
    for path in _match(posixpath.join(raw_dir, "*", "*")):
        stem, ext = posixpath.splitext(path)
        if ext.lower() == ".json" or ext.lower() in VIDEO_EXTS:
            stems.setdefault(stem, []).append(path)
    clips = []
    for stem, paths in sorted(stems.items()):
        video = [p for p in paths if posixpath.splitext(p)[1].lower() in VIDEO_EXTS]
        clip = _rel(stem, raw_dir)
        clips.append({"clip": clip, "subject": clip.split("/")[0], "path": stem,
                      "video": video[0] if video else None,
                      "annotations": stem + ".json" if stem + ".json" in paths else None})
    return clips


def list_face_clips(raw_dir):
    """The MUG-style takes of `raw_dir` as small dicts {"clip", "subject", "emotion", "path",
    "frames", "annotations"}, sorted by take id (paths only, like `list_gesture_clips`)."""
    raw_dir = raw_dir.rstrip("/")
    takes = {}
    for path in _match(posixpath.join(raw_dir, "*", "*", "*", "*")):
        ext = posixpath.splitext(path)[1].lower()
        if ext in IMAGE_EXTS or ext == ".csv":
            takes.setdefault(posixpath.dirname(path), []).append(path)
    clips = []
    for take, paths in sorted(takes.items()):
        clip = _rel(take, raw_dir)
        subject, emotion, _ = clip.split("/")
        clips.append({"clip": clip, "subject": subject, "emotion": emotion, "path": take,
                      "frames": sorted(p for p in paths if not p.endswith(".csv")),
                      "annotations": sorted(p for p in paths if p.endswith(".csv"))})
    return clips


def _decode_video(path):
    """All frames of a video file as a (T, H, W, 3) BGR array; RejectedClip if undecodable."""
    import cv2
    tmp = None
    try:
        if not _is_local(path):  # OpenCV reads local files only
            fd, tmp = tempfile.mkstemp(suffix=posixpath.splitext(path)[1])
            with os.fdopen(fd, "wb") as f:
                f.write(read_bytes(path))
        capture = cv2.VideoCapture(tmp or path)
        if not capture.isOpened():
            raise RejectedClip("corrupt_video", f"OpenCV cannot open {path}")
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        capture.release()
    finally:
        if tmp:
            os.remove(tmp)
    if not frames:
        raise RejectedClip("corrupt_video", f"no decodable frame in {path}")
    return np.stack(frames)


def load_gesture_clip(ref, class_names, min_frames):
    """Reads one NATOPS-style clip (video + per-frame joints + label)."""
    if ref["annotations"] is None:
        raise RejectedClip("missing_annotations", f"no {ref['path']}.json next to the video")
    try:
        annotation = json.loads(read_bytes(ref["annotations"]))
    except (ValueError, UnicodeDecodeError) as e:
        raise RejectedClip("missing_annotations", f"{ref['annotations']} is not valid JSON: {e}")
    if not isinstance(annotation, dict) or "joints" not in annotation or "label" not in annotation:
        raise RejectedClip("missing_annotations",
                           f"{ref['annotations']} lacks 'joints' or 'label'")
    label = annotation["label"]
    if label not in class_names:
        raise RejectedClip("unknown_label", f"label {label!r} is not one of {len(class_names)} "
                                            f"classes in {classes.CLASSES_FILE}")
    try:
        joints = np.asarray(annotation["joints"], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise RejectedClip("nan_annotations", f"joints are not numbers: {e}")
    k = len(keypoints.GESTURE_JOINTS)
    if joints.ndim != 2 or joints.shape[1] != 2 * k:
        raise RejectedClip("missing_annotations",
                           f"joints must be T rows of {2 * k} numbers, got shape {joints.shape}")
    if not np.isfinite(joints).all():
        bad = np.where(~np.isfinite(joints).all(axis=1))[0]
        raise RejectedClip("nan_annotations", f"non-finite joints on frames {bad[:5].tolist()}")
    if len(joints) < min_frames:
        raise RejectedClip("too_short", f"{len(joints)} annotated frames < {min_frames}")
    if ref["video"] is None:
        raise RejectedClip("missing_video", f"no video for {ref['annotations']}")
    frames = _decode_video(ref["video"])
    if len(frames) < len(joints):
        raise RejectedClip("truncated_video",
                           f"{len(frames)} decodable frames < {len(joints)} annotated frames")
    return RawClip(frames[:len(joints)], joints.reshape(len(joints), k, 2),
                   class_names.index(label))


def _read_openface_csv(path):
    """Columns of an OpenFace FeatureExtraction CSV as float arrays (header names stripped)."""
    text = read_bytes(path).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2:
        raise RejectedClip("missing_annotations", f"{path} has no data rows")
    header = [h.strip() for h in rows[0]]
    columns = {}
    for i, name in enumerate(header):
        values = []
        for row in rows[1:]:
            cell = row[i].strip() if i < len(row) else ""
            try:
                values.append(float(cell) if cell else np.nan)
            except ValueError:
                values.append(np.nan)
        columns[name] = np.asarray(values)
    return columns


def load_face_clip(ref, class_names, min_frames):
    """Reads one MUG-style take (frame images + OpenFace CSV); the label is the emotion folder."""
    import cv2
    if ref["emotion"] not in class_names:
        raise RejectedClip("unknown_label", f"emotion folder {ref['emotion']!r} is not one of "
                                            f"{class_names}")
    if len(ref["annotations"]) != 1:
        raise RejectedClip("missing_annotations",
                           f"expected one OpenFace CSV in {ref['path']}, found "
                           f"{len(ref['annotations'])}")
    columns = _read_openface_csv(ref["annotations"][0])
    names = ([f"x_{i}" for i in range(keypoints.NUM_FACE_LANDMARKS)]
             + [f"y_{i}" for i in range(keypoints.NUM_FACE_LANDMARKS)]
             + [keypoints.au_column(a) for a in keypoints.EMFACS_AUS[ref["emotion"]]])
    missing = [n for n in names if n not in columns]
    if missing:
        raise RejectedClip("missing_annotations",
                           f"{ref['annotations'][0]} lacks columns {missing[:4]}...")
    table = np.stack([columns[n] for n in names], axis=1)
    bad = ~np.isfinite(table).all(axis=1)
    if "success" in columns:
        bad |= columns["success"] == 0
    if bad.any():
        raise RejectedClip("nan_annotations", f"missing landmarks/AUs or no face on frames "
                                              f"{np.where(bad)[0][:5].tolist()}")
    num_frames = len(table)
    if num_frames < min_frames:
        raise RejectedClip("too_short", f"{num_frames} annotated frames < {min_frames}")
    if len(ref["frames"]) < num_frames:
        raise RejectedClip("truncated_video",
                           f"{len(ref['frames'])} frame images < {num_frames} annotated frames")
    frames = []
    for path in ref["frames"][:num_frames]:
        frame = cv2.imdecode(np.frombuffer(read_bytes(path), np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise RejectedClip("corrupt_video", f"cannot decode frame image {path}")
        if frames and frame.shape != frames[0].shape:
            raise RejectedClip("corrupt_video", f"{path} is {frame.shape[:2]}, the take's first "
                                                f"frame is {frames[0].shape[:2]}")
        frames.append(frame)
    k = keypoints.NUM_FACE_LANDMARKS
    points = np.stack([table[:, :k], table[:, k:2 * k]], axis=-1)
    return RawClip(np.stack(frames), points, class_names.index(ref["emotion"]),
                   aus=table[:, 2 * k:])
