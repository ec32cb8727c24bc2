"""The B.1 preprocessing rules on one decoded clip: sampling, crop, flip, velocity, tf.Example.

Keypoints and landmarks are (x, y) in pixel-index coordinates (the centre of pixel (i, j) is
(i, j)), first of the raw frame, then of the 64x64 crop. The keypoints are a subset of the
landmarks (`DatasetStyle.paper_keypoint_ids`), so both go through the same sampling, crop and flip.
"""

import numpy as np

from amc_tf.data import features, keypoints

# B.1 augmentation: a random stride of 1, 2 or 3 frames and a random horizontal flip.
STRIDES = (1, 2, 3)
FLIP_PROBABILITY = 0.5
# B.1 (NATOPS): a 180x180 crop with the chest at the centre, rescaled to 64x64.
GESTURE_CROP = 180
# Faces: the crop side is this multiple of the landmarks' extent (whole face plus some hair).
FACE_CROP_MARGIN = 1.45


def peak_frame(aus):
    """B.1: the frame with the maximum intensity over the emotion's EMFACS AUs (first if tied)."""
    return int(np.argmax(np.max(aus, axis=1)))


# Anchor rules: the frame a clip's 32-frame window is placed around (`DatasetStyle.anchor_frame`).
def first_frame(clip):
    """B.1 (NATOPS): the clip's first frame, the neutral pose that is the appearance condition."""
    return 0


def au_peak_frame(clip):
    """B.1 (MUG): the peak of the emotion's EMFACS AU intensities."""
    return peak_frame(clip.aus)


def strides_that_fit(num_frames, anchor, before, after=None, strides=STRIDES):
    """The strides whose whole window (`before` frames before the anchor, `after` after) fits."""
    after = features.NUM_FRAMES - 1 - before if after is None else after
    return [s for s in strides if anchor - before * s >= 0 and anchor + after * s <= num_frames - 1]


def sample_indices(num_frames, anchor, before, stride, length=features.NUM_FRAMES):
    """Frame indices anchor + stride * (i - before), i < length; indices past the clip's ends
    repeat its first/last frame (only when even stride 1 does not fit around a MUG peak)."""
    idx = anchor + stride * (np.arange(length) - before)
    return np.clip(idx, 0, num_frames - 1)


# Crop rules (`DatasetStyle.crop_box`): (x0, y0, side) of the square crop in raw pixels from the
# sampled frames' raw landmarks (T, L, 2), fixed for the clip (no per-frame jitter).
def chest_crop_box(points):
    """B.1 (NATOPS): a GESTURE_CROP square with the chest (median over the frames) at the centre."""
    chest = np.median(points[:, keypoints.GESTURE_JOINTS.index("chest")], axis=0)
    return _square(chest, float(GESTURE_CROP))


def landmark_crop_box(points):
    """B.1 (MUG): centre-align and rescale with the facial landmarks (their median centre and
    FACE_CROP_MARGIN times their median extent)."""
    centre = np.median(points.mean(axis=1), axis=0)
    extent = np.median((points.max(axis=1) - points.min(axis=1)).max(axis=1))
    return _square(centre, float(FACE_CROP_MARGIN * extent))


def _square(centre, side):
    x0, y0 = np.round(centre - side / 2.0)
    return int(x0), int(y0), int(round(side))


def _crop_frame(frame, box, size):
    """One frame cropped to `box` (edges replicated past the frame), resized to size x size."""
    import cv2
    x0, y0, side = box
    height, width = frame.shape[:2]
    if x0 >= 0 and y0 >= 0 and x0 + side <= width and y0 + side <= height:  # a view, no copy
        return cv2.resize(frame[y0:y0 + side, x0:x0 + side], (size, size),
                          interpolation=cv2.INTER_AREA)
    if side * side <= height * width:  # a side x side canvas no larger than the frame
        shift = np.float32([[1, 0, -x0], [0, 1, -y0]])
        crop = cv2.warpAffine(frame, shift, (side, side), flags=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_REPLICATE)
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    # A box larger than the frame: shrink the whole frame by the crop's scale first, then place
    # it, so memory stays that of one frame however large the box.
    scale = size / side
    small = cv2.resize(frame, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA)
    sx, sy = small.shape[1] / width, small.shape[0] / height
    # The pixel-centre mapping of `map_points`, applied to the shrunk frame's pixels.
    matrix = np.float32([[scale / sx, 0, 0.5 * scale / sx - x0 * scale - 0.5],
                         [0, scale / sy, 0.5 * scale / sy - y0 * scale - 0.5]])
    return cv2.warpAffine(small, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def map_points(points, box, size=features.FRAME_SIZE):
    """Raw-frame points mapped into the size x size crop of `box` (pixel centres to centres)."""
    x0, y0, side = box
    return (points - np.array([x0, y0], float) + 0.5) * (size / side) - 0.5


def crop_and_resize(frames, points, box, size=features.FRAME_SIZE):
    """Crops every frame to `box` (edges replicated past the frame) and resizes to size x size.

    Returns frames (T, size, size, 3) uint8 and the keypoints mapped into the crop (T, K, 2).
    """
    out = np.empty((len(frames), size, size, frames.shape[-1]), np.uint8)
    for t, frame in enumerate(frames):
        out[t] = _crop_frame(frame, box, size)
    return out, map_points(points, box, size)


def flip(frames, points, flip_map, size=features.FRAME_SIZE):
    """B.1 augmentation: mirror the frames and points and swap left/right points.

    flip_map: after mirroring x, point j takes the coordinates of point flip_map[j]
      (`DatasetStyle.flip_map` for keypoints, `DatasetStyle.landmark_flip_map` for landmarks).
    """
    mirrored = points.copy()
    mirrored[..., 0] = (size - 1) - mirrored[..., 0]
    return frames[:, :, ::-1], mirrored[:, list(flip_map)]


def velocity(points_flat):
    """Frame-to-frame keypoint deltas (T-1, 2k), scaled by VELOCITY_SCALE and clipped to [-1, 1]."""
    return np.clip(np.diff(points_flat, axis=0) / features.VELOCITY_SCALE, -1.0, 1.0)


def crop_window(style, clip, stride):
    """One copy's 32 frame indices and crop box (x0, y0, side), from the annotations alone."""
    idx = sample_indices(clip.num_frames, style.anchor_frame(clip), style.frames_before, stride)
    return idx, style.crop_box(clip.points[idx])


def _frames_at(frames, indices):
    """(i, frame) for the sorted `indices`: from an array, or from a lazy reader's `read`
    (`amc_tf.data.adapters`), which decodes only those frames."""
    if hasattr(frames, "read"):
        return frames.read(indices)
    return ((i, frames[i]) for i in indices)


def make_clips(style, clip, copies):
    """Preprocessed clips for `copies` [(stride, flipped)]: a list of (video (32, 64, 64, 3) RGB
    uint8, keypoints (32, 2k) float32, landmarks (32, 2L) float32).

    Each frame that some window needs is decoded once, in order, and only its crops are kept:
    memory is one raw frame plus the 64x64 windows, however long the clip.
    style: the clip's `amc_tf.data.datasets.DatasetStyle` (anchor, window, crop, points, flip).
    """
    size = features.FRAME_SIZE
    windows = [crop_window(style, clip, stride) for stride, _ in copies]
    uses = {}  # frame -> [(copy, position in its window)]
    for c, (idx, _) in enumerate(windows):
        for position, t in enumerate(idx):
            uses.setdefault(int(t), []).append((c, position))
    videos = [np.empty((len(idx), size, size, 3), np.uint8) for idx, _ in windows]
    for t, frame in _frames_at(clip.frames, sorted(uses)):
        crops = {}
        for c, position in uses[t]:
            box = windows[c][1]
            if box not in crops:
                crops[box] = _crop_frame(frame, box, size)
            videos[c][position] = crops[box]
    made = []
    for (_, flipped), (idx, box), video in zip(copies, windows, videos):
        video, landmarks = video[..., ::-1], map_points(clip.points[idx], box, size)  # BGR -> RGB
        if flipped:
            video, landmarks = flip(video, landmarks, style.landmark_flip_map)
        # Taken after the flip, the keypoints are the flipped landmarks' columns by construction
        # (the same as flipping them with `style.flip_map`).
        points = landmarks[:, list(style.paper_keypoint_ids)]
        made.append((np.ascontiguousarray(video), points.reshape(len(idx), -1).astype(np.float32),
                     landmarks.reshape(len(idx), -1).astype(np.float32)))
    return made


def make_clip(style, clip, stride, flipped):
    """One preprocessed clip (`make_clips` of one copy)."""
    return make_clips(style, clip, [(stride, flipped)])[0]


def _varint(n):
    out = bytearray()
    n &= (1 << 64) - 1  # int64 two's complement, as protobuf encodes negatives
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, payload):
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_example(feature_lists):
    """Serializes a tf.train.Example from {name: bytes | float32 array | int64 array}.

    Writes the protobuf wire format of tensorflow/core/example/{example,feature}.proto directly, so
    Beam workers need not import TensorFlow (seconds per worker process) just to build examples.
    Example.features = 1; Features.feature = 1 (map entry: key 1, value 2); Feature.bytes_list = 1,
    float_list = 2, int64_list = 3, each with a repeated `value` = 1 (numbers packed).
    """
    entries = b""
    for name, value in feature_lists.items():
        if isinstance(value, bytes):
            feature = _field(1, _field(1, value))
        else:
            value = np.asarray(value)
            if value.dtype.kind == "f":
                packed = value.astype("<f4").tobytes()
                feature = _field(2, _field(1, packed))
            else:
                packed = b"".join(_varint(int(v)) for v in value.ravel())
                feature = _field(3, _field(1, packed))
        entries += _field(1, _field(1, name.encode()) + _field(2, feature))
    return _field(1, entries)


def to_example(video, points_flat, motion_class, subject, clip_id, landmarks_flat):
    """The serialized tf.Example of `amc_tf.data.features` for one preprocessed clip (the
    arrays as `make_clip` returns them)."""
    vel = velocity(points_flat.astype(np.float64)).astype(np.float32)
    return encode_example({
        features.VIDEO: video.tobytes(),
        features.KEYPOINTS: points_flat.astype(np.float32),
        features.LANDMARKS: landmarks_flat.astype(np.float32),
        features.VELOCITY: vel,
        features.MOTION_CLASS: np.array([motion_class], np.int64),
        features.SUBJECT: subject.encode(),
        features.CLIP_ID: clip_id.encode(),
    })
