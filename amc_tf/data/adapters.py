"""Raw-data adapters: list the clips of a raw directory and load one clip, for both datasets
(each dataset style names its pair in `amc_tf.data.datasets`).

gestures (NATOPS-style), one clip per video + annotation pair:
    RAW/classes.txt                  class names, one per line (line i = motion_class i)
    RAW/<subject>/<clip>.avi         video (any OpenCV-readable container/codec; .mp4 also read)
    RAW/<subject>/<clip>.json        {"label": "<class name>", "joints": [[x0, y0, .., x8, y8], ..]}
                                     one row per frame, joints in `keypoints.GESTURE_JOINTS` order

faces (MUG-style: the MUG database's own folder layout plus OpenFace's FeatureExtraction CSV):
    RAW/<subject>/<emotion>/<take>/img_0000.jpg ...   frames (jpg or png, in natural order of
                                     their names: img_2 before img_10)
    RAW/<subject>/<emotion>/<take>/<any name>.csv      OpenFace output for the take: columns
                                     x_0..x_67, y_0..y_67 (landmarks) and AUxx_r (AU intensities)

Extensions are matched case-blind (.JSON, .CSV, .AVI). Data files (the style's video/annotation or
image/CSV extensions) at any other depth are listed too and rejected as `unexpected_layout`;
hidden files (a path part starting with ".") and other files (classes.txt, READMEs) are ignored.

Loading never raises anything but `RejectedClip` for bad input, whose `reason` is one of REASONS.
It reads the annotations and the video's (or the frame images') header first and checks them
against the caps below before anything is decoded. With `lazy=True` the frames are decoded later,
only those a window needs (`RawClip.frames.read`). Paths may be local or any Beam filesystem.
"""

import codecs
import collections
import csv
import json
import os
import posixpath
import re
import struct
import tempfile
import weakref

import numpy as np

from amc_tf.data import classes, keypoints

VIDEO_EXTS = (".avi", ".mp4", ".mov", ".mkv")
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
GESTURE_DATA_EXTS = VIDEO_EXTS + (".json",)
FACE_DATA_EXTS = IMAGE_EXTS + (".csv",)

# Caps on what one clip may cost; over any of them a clip is rejected as `too_large` before the
# expensive step (decoding, parsing) would run, never killed for memory.
# Annotated frames per clip: 16.7 min at NATOPS' 20 fps; MUG takes have a few hundred frames.
MAX_FRAMES_PER_CLIP = 20_000
# Pixels per frame (4096 x 4096): one BGR frame is then at most 48 MiB, and a clip holds one raw
# frame at a time while its windows are cropped.
MAX_PIXELS_PER_FRAME = 4096 * 4096
# A JSON annotation file is parsed whole: 16 MiB is 5x a 20,000-frame NATOPS annotation.
MAX_ANNOTATION_BYTES = 16 * 2**20
# A CSV is streamed row by row; one OpenFace row with every column is about 6,000 characters.
MAX_CSV_ROW_CHARS = 65_536
# One frame image file (a 4096 x 4096 PNG of noise is 48 MiB).
MAX_IMAGE_BYTES = 64 * 2**20
# Keypoints may lie outside the frame (a limb leaving the picture) but not by more than one frame
# size: x in [-W, 2W], y in [-H, 2H]. Beyond that they do not belong to this video.
OUT_OF_FRAME_MARGIN = 1.0
# A crop box (B.1) must overlap the frame, and its side must lie in [MIN_CROP_SIDE,
# MAX_CROP_SCALE x the frame's larger side]: a face crop twice the frame means garbage landmarks.
MIN_CROP_SIDE = 8
MAX_CROP_SCALE = 2.0

# Why a clip can be rejected (each is a Beam counter and a `reason` in the rejected records).
REASONS = {
    "corrupt_video": "the video (or a frame image) cannot be decoded: unreadable or zero-byte "
                     "file, not a JPEG/PNG image, or frames of differing sizes",
    "truncated_video": "fewer decodable frames than annotated frames",
    "missing_video": "annotations without a video",
    "missing_annotations": "no annotation file, or it lacks a required field or column, or its "
                           "joints are not T rows of 2k values",
    "unreadable_annotations": "the annotation file is not UTF-8 text, or not valid JSON/CSV",
    "nan_annotations": "NaN, infinite, empty or non-numeric keypoints or AU intensities (also "
                       "numbers beyond float32's range), or OpenFace reported no face",
    "keypoints_out_of_frame": "a keypoint or landmark lies more than one frame size outside the "
                              "frame (x outside [-W, 2W] or y outside [-H, 2H])",
    "crop_outside_frame": "the crop box (B.1) does not overlap the frame: the annotations are "
                          "shifted off the video",
    "crop_size_out_of_range": f"the crop box's side is under {MIN_CROP_SIDE} px or over "
                              f"{MAX_CROP_SCALE:g}x the frame's larger side (garbage landmarks)",
    "too_large": f"over a cap: more than {MAX_FRAMES_PER_CLIP} annotated frames, more than "
                 f"{MAX_PIXELS_PER_FRAME} pixels per frame, a JSON annotation over "
                 f"{MAX_ANNOTATION_BYTES} bytes, a CSV row over {MAX_CSV_ROW_CHARS} characters "
                 f"or a frame image over {MAX_IMAGE_BYTES} bytes",
    "unknown_label": "the label is not one of the dataset's classes",
    "too_short": "fewer than 32 frames (B.1)",
    "unexpected_layout": "a data file at a depth the layout does not have (e.g. RAW/clip.avi), "
                         "or several videos or annotation files for one clip",
    "non_finite_example": "a preprocessed example has a non-finite keypoint, landmark or "
                          "velocity (a last guard: nothing non-finite is written)",
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
    """One loaded raw clip: BGR frames (T, H, W, 3) uint8 (an array, or with `lazy=True` a reader
    with len(), .shape and .read(indices)), all the style's landmarks (T, L, 2) in frame pixels,
    the class id, and (faces) the EMFACS AU intensities (T, A) for the peak rule."""

    def __init__(self, frames, points, label, aus=None):
        self.frames, self.points, self.label, self.aus = frames, points, label, aus

    @property
    def num_frames(self):
        return len(self.points)


def _fs():
    from apache_beam.io.filesystems import FileSystems
    return FileSystems


def escape_glob(path):
    """`path` as a Beam match pattern that matches itself: Beam's patterns (fnmatch-style, local
    and GCS alike) have no escape character, so each metacharacter becomes a one-character class
    ("[" as "[\\[]": Python's re warns on "[[]"; it also matches a backslash, rare in paths).
    """
    return re.sub(r"[\[*?]", lambda m: "[\\[]" if m.group() == "[" else f"[{m.group()}]", path)


def _match(pattern):
    result = _fs().match([pattern])[0]
    return sorted(m.path for m in result.metadata_list)


def list_files(directory):
    """Every file under `directory` (any depth), sorted; metacharacters in its name are literal."""
    return _match(escape_glob(directory.rstrip("/")) + "/**")


def read_bytes(path):
    with _fs().open(path, compression_type="uncompressed") as f:
        return f.read()


def _read_capped(path, limit, what):
    """The bytes of `path`, or `too_large` if it holds more than `limit` (read no further)."""
    with _fs().open(path, compression_type="uncompressed") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise RejectedClip("too_large", f"{what} {path} is over {limit} bytes")
    return data


def _is_local(path):
    return "://" not in path


def _rel(path, root):
    return posixpath.relpath(path.replace(os.sep, "/"), root.replace(os.sep, "/").rstrip("/"))


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def natural_key(name):
    """Sort key comparing digit runs as numbers (img_2 < img_10), of any length."""
    parts = re.split(r"(\d+)", name)
    return [(len(p.lstrip("0")), p.lstrip("0"), p) if i % 2 else (0, p, p)
            for i, p in enumerate(parts)]


def read_class_list(path):
    """The class names listed one per line in `path` (gestures' classes.txt), or None if there is
    no such file. A UTF-8 BOM and CRLF line ends are fine; duplicates are an error."""
    if not _fs().exists(path):
        return None
    try:
        text = read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text ({e}); save it as UTF-8, one class name "
                         f"per line") from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{path} lists no class names")
    duplicates = sorted(n for n, count in collections.Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"{path} lists these class names more than once: {duplicates}")
    return names


def _layout_ref(clip, path, detail):
    """A ref that loading rejects as `unexpected_layout`; the subject is its first path part."""
    parts = clip.split("/")
    return {"clip": clip, "subject": parts[0] if len(parts) > 1 else "", "path": path,
            "layout_error": detail}


def _check_layout(ref):
    if ref.get("layout_error"):
        raise RejectedClip("unexpected_layout", ref["layout_error"])


def _data_files(raw_dir, exts):
    """(relative path parts, path) of the files under raw_dir with a data extension, hidden
    files and folders left out."""
    for path in list_files(raw_dir):
        parts = _rel(path, raw_dir).split("/")
        if any(p.startswith(".") for p in parts):
            continue
        if posixpath.splitext(parts[-1])[1].lower() in exts:
            yield parts, path


def list_gesture_clips(raw_dir):
    """The NATOPS-style clips of `raw_dir` as small dicts {"clip", "subject", "path", "video",
    "annotations"}, sorted by clip id; data files at another depth as {"clip", "subject", "path",
    "layout_error"} (rejected when loaded).

    Only paths are listed here (cheap, at pipeline construction); clips are decoded in the workers.
    """
    raw_dir = raw_dir.rstrip("/")
    stems = {}
    for parts, path in _data_files(raw_dir, GESTURE_DATA_EXTS):
        stems.setdefault(posixpath.splitext(path)[0], []).append((len(parts), path))
    clips = []
    for stem, found in sorted(stems.items()):
        paths = [p for _, p in found]
        clip = _rel(stem, raw_dir)
        videos = [p for p in paths if posixpath.splitext(p)[1].lower() in VIDEO_EXTS]
        annotations = [p for p in paths if posixpath.splitext(p)[1].lower() == ".json"]
        if found[0][0] != 2:
            clips.append(_layout_ref(clip, stem, (
                f"{', '.join(paths)}: gestures clips are <subject>/<clip>.avi + .json, "
                f"{found[0][0]} levels below {raw_dir}")))
        elif len(videos) > 1 or len(annotations) > 1:
            clips.append(_layout_ref(clip, stem,
                                     f"one clip, several files: {', '.join(paths)}"))
        else:
            clips.append({"clip": clip, "subject": clip.split("/")[0], "path": stem,
                          "video": videos[0] if videos else None,
                          "annotations": annotations[0] if annotations else None})
    return clips


def list_face_clips(raw_dir):
    """The MUG-style takes of `raw_dir` as small dicts {"clip", "subject", "emotion", "path",
    "frames", "annotations"}, sorted by take id (paths only, like `list_gesture_clips`); data
    files at another depth, one ref per folder, are rejected when loaded."""
    raw_dir = raw_dir.rstrip("/")
    takes = {}
    for parts, path in _data_files(raw_dir, FACE_DATA_EXTS):
        takes.setdefault(posixpath.dirname(path), []).append((len(parts), path))
    clips = []
    for take, found in sorted(takes.items()):
        paths = [p for _, p in found]
        clip = _rel(take, raw_dir)
        if found[0][0] != 4:
            shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3
                                            else "")
            clips.append(_layout_ref(clip, take, (
                f"{shown}: faces takes are <subject>/<emotion>/<take>/ with frames and an "
                f"OpenFace CSV, these are {found[0][0]} levels below {raw_dir}")))
            continue
        subject, emotion, _ = clip.split("/")
        is_csv = [posixpath.splitext(p)[1].lower() == ".csv" for p in paths]
        clips.append({"clip": clip, "subject": subject, "emotion": emotion, "path": take,
                      "frames": sorted((p for p, c in zip(paths, is_csv) if not c),
                                       key=natural_key),
                      "annotations": sorted(p for p, c in zip(paths, is_csv) if c)})
    return clips


def _check_frame_size(height, width, path):
    if height <= 0 or width <= 0:
        raise RejectedClip("corrupt_video", f"{path} reports no frame size ({width}x{height})")
    if height * width > MAX_PIXELS_PER_FRAME:
        raise RejectedClip("too_large", f"{path} has {width}x{height} frames, over "
                                        f"{MAX_PIXELS_PER_FRAME} pixels")


def _check_decoded(frame, height, width, path):
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[:2] not in ((height, width),
                                                                         (width, height)):
        raise RejectedClip("corrupt_video", f"a frame of {path} decodes as {frame.shape}, its "
                                            f"header says {width}x{height}")


class VideoFrames:
    """A video's frames, decoded on demand: len() is the annotated frame count, .shape comes from
    the header (read here, before any decoding)."""

    def __init__(self, path, num_frames):
        import cv2
        self.path, self._local = path, path
        if not _is_local(path):  # OpenCV reads local files only: one streamed copy per clip
            fd, self._local = tempfile.mkstemp(suffix=posixpath.splitext(path)[1])
            weakref.finalize(self, os.remove, self._local)
            with os.fdopen(fd, "wb") as out, _fs().open(
                    path, compression_type="uncompressed") as f:
                while True:
                    chunk = f.read(1 << 22)
                    if not chunk:
                        break
                    out.write(chunk)
        capture = cv2.VideoCapture(self._local)
        try:
            if not capture.isOpened():
                raise RejectedClip("corrupt_video", f"OpenCV cannot open {path}")
            width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
            height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        finally:
            capture.release()
        _check_frame_size(height, width, path)
        self.shape = (num_frames, height, width, 3)

    def __len__(self):
        return self.shape[0]

    def read(self, indices):
        """Yields (i, frame) for the sorted `indices`. Other frames are only grabbed (not kept),
        up to the last annotated one, so that a truncated video is still rejected."""
        import cv2
        wanted = {int(i) for i in indices}
        _, height, width, _ = self.shape
        capture = cv2.VideoCapture(self._local)
        try:
            for t in range(len(self)):
                if t in wanted:
                    ok, frame = capture.read()
                else:
                    ok, frame = capture.grab(), None
                if not ok and t == 0:
                    raise RejectedClip("corrupt_video", f"no decodable frame in {self.path}")
                if not ok:
                    raise RejectedClip("truncated_video", f"{self.path}: {t} decodable frames < "
                                                          f"{len(self)} annotated frames")
                if frame is not None:
                    _check_decoded(frame, height, width, self.path)
                    yield t, frame
        finally:
            capture.release()


def image_size(head):
    """(width, height) from the first bytes of a PNG or JPEG file, or None if it is neither (or
    the size lies beyond `head`)."""
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        if len(head) >= 24 and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        return None
    if head[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn: the frame size
            if i + 9 > len(head):
                return None
            height, width = struct.unpack(">HH", head[i + 5:i + 9])
            return width, height
        i += 2 + struct.unpack(">H", head[i + 2:i + 4])[0]
    return None


def _image_header(path):
    """(height, width) of a frame image from its header, without decoding it."""
    with _fs().open(path, compression_type="uncompressed") as f:
        head = f.read(1 << 16)
    if not head:
        raise RejectedClip("corrupt_video", f"zero-byte frame image {path}")
    size = image_size(head)
    if size is None and len(head) == 1 << 16:  # the size may follow large EXIF blocks
        size = image_size(_read_capped(path, MAX_IMAGE_BYTES, "frame image"))
    if size is None:
        raise RejectedClip("corrupt_video", f"{path} is not a JPEG or PNG image")
    width, height = size
    _check_frame_size(height, width, path)
    return height, width


class ImageFrames:
    """A take's frame images, decoded on demand (headers already checked: one size for all)."""

    def __init__(self, paths, height, width):
        self.paths = list(paths)
        self.shape = (len(self.paths), height, width, 3)

    def __len__(self):
        return self.shape[0]

    def read(self, indices):
        """Yields (i, frame) for the sorted `indices`, decoding only those images."""
        import cv2
        _, height, width, _ = self.shape
        for i in indices:
            path = self.paths[int(i)]
            data = _read_capped(path, MAX_IMAGE_BYTES, "frame image")
            frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
            if frame is None:
                raise RejectedClip("corrupt_video", f"cannot decode frame image {path}")
            _check_decoded(frame, height, width, path)
            yield int(i), frame


def _decode_all(frames):
    decoded = [frame for _, frame in frames.read(range(len(frames)))]
    shapes = {f.shape for f in decoded}
    if len(shapes) > 1:
        raise RejectedClip("corrupt_video", f"frames of differing sizes {sorted(shapes)}")
    return np.stack(decoded)


def _check_points(points, height, width, path):
    """Points (T, L, 2): finite as float32 (as stored) and within one frame size of the frame."""
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(points.astype(np.float32)).all(axis=(1, 2))
    if not finite.all():
        raise RejectedClip("nan_annotations", f"{path}: non-finite (or beyond float32) points on "
                                              f"frames {np.where(~finite)[0][:5].tolist()}")
    m = OUT_OF_FRAME_MARGIN
    x, y = points[..., 0], points[..., 1]
    outside = ((x < -m * width) | (x > (1 + m) * width)
               | (y < -m * height) | (y > (1 + m) * height)).any(axis=1)
    if outside.any():
        t = int(np.where(outside)[0][0])
        raise RejectedClip("keypoints_out_of_frame", (
            f"{path}: points more than one frame size outside the {width}x{height} frame on "
            f"frames {np.where(outside)[0][:5].tolist()} (e.g. x {x[t].min():.4g}..{x[t].max():.4g}"
            f", y {y[t].min():.4g}..{y[t].max():.4g})"))


def check_crop_box(box, frame_shape, path):
    """RejectedClip unless the crop box (x0, y0, side) overlaps the frame with a side in
    [MIN_CROP_SIDE, MAX_CROP_SCALE x the frame's larger side]; frame_shape is (T, H, W, 3)."""
    x0, y0, side = box
    height, width = frame_shape[1:3]
    if not MIN_CROP_SIDE <= side <= MAX_CROP_SCALE * max(height, width):
        raise RejectedClip("crop_size_out_of_range", (
            f"{path}: crop side {side} px for a {width}x{height} frame (allowed {MIN_CROP_SIDE}.."
            f"{MAX_CROP_SCALE * max(height, width):g})"))
    if x0 >= width or y0 >= height or x0 + side <= 0 or y0 + side <= 0:
        raise RejectedClip("crop_outside_frame", f"{path}: crop box x {x0}..{x0 + side}, y "
                                                 f"{y0}..{y0 + side} misses the {width}x{height} "
                                                 f"frame")


def _read_json(path):
    data = _read_capped(path, MAX_ANNOTATION_BYTES, "annotation file")
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise RejectedClip("unreadable_annotations", f"{path} is not UTF-8 text: {e}") from None
    except (ValueError, RecursionError) as e:
        raise RejectedClip("unreadable_annotations",
                           f"{path} is not valid JSON: {str(e)[:200]}") from None


def _joints(rows, path):
    """The JSON "joints" rows as a (T, k, 2) float64 array."""
    k = len(keypoints.GESTURE_JOINTS)
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 2 * k
                                             for r in rows):
        bad = (next(_short(r) for r in rows if not isinstance(r, list) or len(r) != 2 * k)
               if isinstance(rows, list) else type(rows).__name__)
        raise RejectedClip("missing_annotations", f"{path}: joints must be T rows of {2 * k} "
                                                  f"numbers, got {bad}")
    values = []
    for t, row in enumerate(rows):
        for v in row:
            if v is None:
                values.append(np.nan)
            elif isinstance(v, bool) or not isinstance(v, (int, float)):
                raise RejectedClip("nan_annotations", f"{path}: joints are not numbers "
                                                      f"(frame {t}: {_short(v)})")
            else:
                try:
                    values.append(float(v))
                except OverflowError:  # an integer beyond float64
                    values.append(np.inf)
    return np.asarray(values, np.float64).reshape(len(rows), k, 2)


def load_gesture_clip(ref, class_names, min_frames, lazy=False):
    """Reads one NATOPS-style clip (video + per-frame joints + label). lazy: leave the frames to
    be decoded by `frames.read` (only the video's header is read here)."""
    _check_layout(ref)
    if ref["annotations"] is None:
        raise RejectedClip("missing_annotations", f"no {ref['path']}.json next to the video")
    annotation = _read_json(ref["annotations"])
    if not isinstance(annotation, dict) or "joints" not in annotation or "label" not in annotation:
        raise RejectedClip("missing_annotations",
                           f"{ref['annotations']} lacks 'joints' or 'label'")
    label = annotation["label"]
    if not isinstance(label, str) or label not in class_names:
        raise RejectedClip("unknown_label", f"label {_short(label)} is not one of "
                                            f"{len(class_names)} classes in "
                                            f"{classes.CLASSES_FILE}")
    joints = _joints(annotation["joints"], ref["annotations"])
    if len(joints) < min_frames:
        raise RejectedClip("too_short", f"{len(joints)} annotated frames < {min_frames}")
    if len(joints) > MAX_FRAMES_PER_CLIP:
        raise RejectedClip("too_large", f"{len(joints)} annotated frames > "
                                        f"{MAX_FRAMES_PER_CLIP}")
    if ref["video"] is None:
        raise RejectedClip("missing_video", f"no video for {ref['annotations']}")
    frames = VideoFrames(ref["video"], len(joints))
    _check_points(joints, *frames.shape[1:3], ref["annotations"])
    return RawClip(frames if lazy else _decode_all(frames), joints, class_names.index(label))


def _csv_lines(path):
    """The lines of a UTF-8 text file (a BOM is dropped), streamed; `too_large` past
    MAX_CSV_ROW_CHARS in one line."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    with _fs().open(path, compression_type="uncompressed") as f:
        while True:
            chunk = f.read(1 << 20)
            *lines, pending = (pending + decoder.decode(chunk, final=not chunk)).split("\n")
            if not chunk and pending:
                lines.append(pending)  # a last line without a line end
            for line in lines:
                if len(line) > MAX_CSV_ROW_CHARS:
                    raise RejectedClip("too_large", f"{path} has a row over {MAX_CSV_ROW_CHARS} "
                                                    f"characters")
                yield line + "\n"
            if not chunk:
                return
            if len(pending) > MAX_CSV_ROW_CHARS:
                raise RejectedClip("too_large", f"{path} has a row over {MAX_CSV_ROW_CHARS} "
                                                f"characters")


def _read_openface_csv(path, names=None):
    """Columns of an OpenFace FeatureExtraction CSV as float arrays (header names stripped; cells
    that are empty or not numbers are NaN); only `names` (those present) when given."""
    try:
        rows = csv.reader(_csv_lines(path))
        header = [h.strip() for h in next(rows, [])]
        wanted = names if names is not None else header
        index = {}
        for i, name in enumerate(header):
            if name in wanted:
                index.setdefault(name, i)
        columns = {name: [] for name in index}
        num_rows = 0
        for row in rows:
            num_rows += 1
            if num_rows > MAX_FRAMES_PER_CLIP:
                raise RejectedClip("too_large", f"{path} has over {MAX_FRAMES_PER_CLIP} rows")
            for name, i in index.items():
                cell = row[i].strip() if i < len(row) else ""
                try:
                    columns[name].append(float(cell) if cell else np.nan)
                except ValueError:
                    columns[name].append(np.nan)
    except UnicodeDecodeError as e:
        raise RejectedClip("unreadable_annotations", f"{path} is not UTF-8 text: {e}") from None
    except csv.Error as e:
        raise RejectedClip("unreadable_annotations", f"{path} is not a valid CSV: {e}") from None
    if num_rows < 1:
        raise RejectedClip("missing_annotations", f"{path} has no data rows")
    return {name: np.asarray(values, np.float64) for name, values in columns.items()}


def load_face_clip(ref, class_names, min_frames, lazy=False):
    """Reads one MUG-style take (frame images + OpenFace CSV); the label is the emotion folder.
    lazy: only the frame images' headers are read here, `frames.read` decodes them."""
    _check_layout(ref)
    if ref["emotion"] not in class_names:
        raise RejectedClip("unknown_label", f"emotion folder {ref['emotion']!r} is not one of "
                                            f"{class_names}")
    if len(ref["annotations"]) != 1:
        raise RejectedClip("missing_annotations",
                           f"expected one OpenFace CSV in {ref['path']}, found "
                           f"{len(ref['annotations'])}")
    path = ref["annotations"][0]
    names = ([f"x_{i}" for i in range(keypoints.NUM_FACE_LANDMARKS)]
             + [f"y_{i}" for i in range(keypoints.NUM_FACE_LANDMARKS)]
             + [keypoints.au_column(a) for a in keypoints.EMFACS_AUS[ref["emotion"]]])
    columns = _read_openface_csv(path, names + ["success"])
    missing = [n for n in names if n not in columns]
    if missing:
        raise RejectedClip("missing_annotations", f"{path} lacks columns {missing[:4]}...")
    table = np.stack([columns[n] for n in names], axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~np.isfinite(table.astype(np.float32)).all(axis=1)
    if "success" in columns:
        bad |= columns["success"] == 0
    if bad.any():
        raise RejectedClip("nan_annotations", f"{path}: missing landmarks/AUs (or beyond float32)"
                                              f" or no face on frames "
                                              f"{np.where(bad)[0][:5].tolist()}")
    num_frames = len(table)
    if num_frames < min_frames:
        raise RejectedClip("too_short", f"{num_frames} annotated frames < {min_frames}")
    if len(ref["frames"]) < num_frames:
        raise RejectedClip("truncated_video",
                           f"{len(ref['frames'])} frame images < {num_frames} annotated frames")
    paths = ref["frames"][:num_frames]
    size = None
    for frame_path in paths:  # headers only: garbage or a size change anywhere in the take
        header = _image_header(frame_path)
        if size is not None and header != size:
            raise RejectedClip("corrupt_video", f"{frame_path} is {header[1]}x{header[0]}, the "
                                                f"take's first frame is {size[1]}x{size[0]}")
        size = header
    frames = ImageFrames(paths, *size)
    k = keypoints.NUM_FACE_LANDMARKS
    points = np.stack([table[:, :k], table[:, k:2 * k]], axis=-1)
    _check_points(points, *size, path)
    return RawClip(frames if lazy else _decode_all(frames), points,
                   class_names.index(ref["emotion"]), aus=table[:, 2 * k:])

