"""Synthetic MUG-like faces: OpenFace 68-point landmarks driven by action units (Table A).

Each take starts neutral and moves to the peak of one of the 6 emotions; the per-frame AU
intensities that drive the landmarks are written to the OpenFace-style CSV, so the preprocessing's
peak rule (max intensity over the emotion's EMFACS AUs, B.1) finds the rendered apex.
"""

import os

import numpy as np

from amc_tf.data import classes, keypoints
from amc_tf.data.synthetic_scene import (SUB, background, default_num_subjects, random_colour,
                                          subject_name)

FACE_FRAME_SIZE = 128
FACE_FPS = 20


def _template():
    """The neutral 68-point template in face units (x right, y down, nose tip near the origin)."""
    pts = np.zeros((68, 2))
    phi = np.linspace(-0.08 * np.pi, 1.08 * np.pi, 17)            # jaw 0..16, chin at 8
    pts[0:17] = np.stack([-np.cos(phi) * 0.95, np.sin(phi)], -1)
    t = np.linspace(0, 1, 5)
    pts[17:22] = np.stack([-0.75 + 0.6 * t, -0.55 - 0.08 * np.sin(np.pi * t)], -1)
    pts[22:27] = pts[17:22][::-1] * [-1, 1]                       # mirrored brow
    pts[27:31] = np.stack([np.zeros(4), np.linspace(-0.4, -0.02, 4)], -1)
    pts[31:36] = [[-0.2, 0.08], [-0.1, 0.1], [0.0, 0.12], [0.1, 0.1], [0.2, 0.08]]
    eye = np.array([[-0.54, -0.32], [-0.45, -0.37], [-0.33, -0.37], [-0.26, -0.32],
                    [-0.33, -0.28], [-0.45, -0.28]])
    pts[36:42] = eye
    pts[42:48] = eye[[3, 2, 1, 0, 5, 4]] * [-1, 1]
    pts[48:60] = [[-0.35, 0.45], [-0.22, 0.4], [-0.08, 0.37], [0.0, 0.38], [0.08, 0.37],
                  [0.22, 0.4], [0.35, 0.45], [0.22, 0.52], [0.1, 0.56], [0.0, 0.57],
                  [-0.1, 0.56], [-0.22, 0.52]]
    pts[60:68] = [[-0.3, 0.45], [-0.1, 0.43], [0.0, 0.43], [0.1, 0.43], [0.3, 0.45],
                  [0.1, 0.47], [0.0, 0.47], [-0.1, 0.47]]
    return pts


TEMPLATE = _template()
_CORNERS = [48, 54, 60, 64]
_UPPER_LIP = [49, 50, 51, 52, 53, 61, 62, 63]
_LOWER_LIP = [55, 56, 57, 58, 59, 65, 66, 67]

# Peak AU intensities (0-5) per emotion: the Table A prototype each synthetic take moves to.
EMOTION_PEAKS = {
    "anger": {4: 3.5, 5: 1.5, 7: 2.5, 10: 1.0, 17: 1.5, 23: 3.0},
    "disgust": {9: 3.5, 10: 3.0, 17: 1.5, 4: 1.0, 25: 1.0},
    "fear": {1: 3.0, 2: 2.5, 4: 2.0, 5: 3.5, 20: 3.5, 25: 2.0, 26: 1.5},
    "happy": {6: 3.0, 12: 4.5, 25: 1.5},
    "sad": {1: 3.0, 4: 2.5, 15: 4.0, 17: 2.5},
    "surprise": {1: 4.0, 2: 3.5, 5: 3.0, 26: 4.0, 25: 2.0},
}


def _side(x):
    """-1 on the image-left half of the face, +1 on the right (moves pull away from the midline)."""
    return np.sign(x)


def apply_aus(points, au):
    """Deforms neutral landmarks (68, 2) by AU intensities {au: 0..5} (FACS action descriptions)."""
    p = points.copy()
    i = {a: au.get(a, 0.0) / 5.0 for a in keypoints.OPENFACE_AUS}
    inner_brow, outer_brow = [20, 21, 22, 23], [17, 18, 25, 26]
    brows = list(range(17, 27))
    p[inner_brow, 1] -= 0.14 * i[1]                               # AU1 inner brow raiser
    p[[19, 24], 1] -= 0.06 * i[1]
    p[outer_brow, 1] -= 0.13 * i[2]                               # AU2 outer brow raiser
    p[brows, 1] += 0.13 * i[4] + 0.05 * i[9]                      # AU4 brow lowerer (+ AU9)
    p[inner_brow, 0] -= 0.06 * i[4] * _side(p[inner_brow, 0])
    upper_lids, lower_lids = [37, 38, 43, 44], [40, 41, 46, 47]
    p[upper_lids, 1] -= 0.06 * i[5] - 0.03 * i[7]                 # AU5 lid raiser, AU7 tightener
    p[lower_lids, 1] -= 0.035 * i[6] + 0.02 * i[7]                # AU6 cheek raiser
    p[31:36, 1] -= 0.06 * i[9]                                    # AU9 nose wrinkler
    p[_UPPER_LIP, 1] -= 0.1 * i[10] + 0.03 * i[9]                # AU10 upper lip raiser
    p[_CORNERS, 1] -= 0.12 * i[12]                                # AU12 lip corner puller
    p[_CORNERS, 0] += 0.09 * i[12] * _side(p[_CORNERS, 0])
    p[_CORNERS, 1] += 0.1 * i[15]                                 # AU15 lip corner depressor
    p[_LOWER_LIP, 1] -= 0.05 * i[17]                              # AU17 chin raiser
    p[[7, 8, 9], 1] -= 0.05 * i[17]
    p[_CORNERS, 0] += 0.12 * i[20] * _side(p[_CORNERS, 0])        # AU20 lip stretcher
    p[_CORNERS, 1] += 0.02 * i[20]
    p[[49, 50, 51, 52, 53], 1] += 0.025 * i[23]                   # AU23 lip tightener
    p[[55, 56, 57, 58, 59], 1] -= 0.025 * i[23]
    p[_CORNERS, 0] -= 0.04 * i[23] * _side(p[_CORNERS, 0])
    p[_LOWER_LIP, 1] += 0.05 * i[25]                              # AU25 lips part
    jaw_drop = 0.22 * i[26]                                       # AU26 jaw drop
    p[_LOWER_LIP, 1] += jaw_drop
    p[2:15, 1] += jaw_drop * np.sin(np.linspace(0.15, 0.85, 13) * np.pi) ** 2
    return p


def au_timeline(emotion, num_frames, rng):
    """Per-frame AU intensities (T, 17 OpenFace AUs): neutral, ramp to the apex, slow release."""
    onset = rng.integers(42, 53)
    ramp = rng.integers(14, 23)
    t = np.arange(num_frames, dtype=np.float64)
    x = np.clip((t - onset) / ramp, 0, 1)
    envelope = x * x * (3 - 2 * x) - np.clip(t - onset - ramp, 0, None) * 0.006
    envelope = np.clip(envelope, 0, 1)
    strength = rng.uniform(0.8, 1.15)
    table = np.abs(rng.normal(0.0, 0.08, (num_frames, len(keypoints.OPENFACE_AUS))))
    for au, peak in EMOTION_PEAKS[emotion].items():
        column = keypoints.OPENFACE_AUS.index(au)
        table[:, column] += np.clip(peak * strength * envelope
                                    + rng.normal(0, 0.03, num_frames) * (envelope > 0), 0, 5)
    return np.clip(table, 0, 5)


def _subject_face(rng):
    skin_tones = [(205, 224, 241), (160, 190, 225), (120, 160, 205), (80, 115, 165),
                  (60, 85, 125), (180, 200, 235)]                   # BGR
    skin = np.array(skin_tones[rng.integers(len(skin_tones))], float) * rng.uniform(0.9, 1.05)
    return dict(
        width=rng.uniform(0.88, 1.02), height=rng.uniform(1.0, 1.15), unit=rng.uniform(32, 37),
        eye_spread=rng.uniform(0.94, 1.08), mouth_width=rng.uniform(0.9, 1.12),
        skin=tuple(int(c) for c in np.clip(skin, 0, 255)),
        hair=random_colour(rng, (0.05, 0.6), (0.2, 0.8)),
        hair_long=bool(rng.random() < 0.5), hair_top=rng.uniform(1.05, 1.25),
        iris=random_colour(rng, (0.2, 0.6), (0.3, 0.8)),
        lips=tuple(int(c * rng.uniform(0.7, 1.0)) for c in (110, 110, 190)),
    )


def face_landmarks(face, aus_table, rng):
    """Per-frame landmarks (T, 68, 2) in frame pixels for one take of one identity."""
    neutral = TEMPLATE.copy()
    neutral[:, 0] *= face["width"]
    neutral[:17, 1] *= face["height"]
    neutral[36:48, 0] *= face["eye_spread"]
    neutral[48:68, 0] *= face["mouth_width"]
    num_frames = len(aus_table)
    centre = np.array([FACE_FRAME_SIZE / 2 + rng.uniform(-6, 6),
                       FACE_FRAME_SIZE / 2 + 4 + rng.uniform(-5, 5)])
    drift = np.cumsum(rng.normal(0, 0.15, (num_frames, 2)), axis=0)
    unit = face["unit"] * rng.uniform(0.95, 1.05)
    out = np.empty((num_frames, 68, 2))
    for t in range(num_frames):
        au = dict(zip(keypoints.OPENFACE_AUS, aus_table[t]))
        out[t] = centre + drift[t] + unit * apply_aus(neutral, au)
    return out, unit


def _poly(points):
    return np.round(np.asarray(points) * SUB).astype(np.int32)


def render_face_frame(bg, lm, face, unit):
    """One anti-aliased frame of the face with landmarks lm (68, 2) over `bg`."""
    import cv2
    img = bg.copy()
    aa, shift = cv2.LINE_AA, 4
    centre = lm[27:31].mean(axis=0)
    top = centre[1] - face["hair_top"] * unit * face["height"]
    half_w = np.ptp(lm[0:17, 0]) / 2
    if face["hair_long"]:
        hair_back = np.array([[centre[0] - half_w * 1.25, top + 0.4 * unit],
                              [centre[0] + half_w * 1.25, top + 0.4 * unit],
                              [centre[0] + half_w * 1.3, lm[8, 1] + 0.2 * unit],
                              [centre[0] - half_w * 1.3, lm[8, 1] + 0.2 * unit]])
        cv2.fillConvexPoly(img, _poly(hair_back), face["hair"], aa, shift)
    neck = np.array([lm[5], lm[11], [lm[11, 0], lm[8, 1] + unit], [lm[5, 0], lm[8, 1] + unit]])
    cv2.fillConvexPoly(img, _poly(neck), tuple(int(c * 0.8) for c in face["skin"]), aa, shift)
    arc = np.linspace(0, np.pi, 15)
    forehead = np.stack([centre[0] + np.cos(arc) * half_w,
                         lm[[0, 16], 1].mean() - np.sin(arc) * (lm[[0, 16], 1].mean() - top)], -1)
    outline = np.concatenate([lm[0:17], forehead[1:-1]])
    cv2.fillPoly(img, [_poly(outline)], face["skin"], aa, shift)
    fringe = np.stack([centre[0] + np.cos(arc) * half_w * 1.04,
                       top + 0.32 * unit - np.sin(arc) * 0.45 * unit], -1)
    cv2.fillPoly(img, [_poly(fringe)], face["hair"], aa, shift)
    for brow in (lm[17:22], lm[22:27]):
        cv2.polylines(img, [_poly(brow)], False, face["hair"], max(2, int(unit / 12)), aa, shift)
    for eye in (lm[36:42], lm[42:48]):
        cv2.fillPoly(img, [_poly(eye)], (245, 245, 245), aa, shift)
        opening = max(0.5, (eye[4:6, 1].mean() - eye[1:3, 1].mean()) / 2)
        cv2.circle(img, tuple(_poly(eye.mean(axis=0))), int(min(opening, unit * 0.07) * SUB),
                   face["iris"], -1, aa, shift)
        cv2.polylines(img, [_poly(eye)], True, (40, 40, 40), 1, aa, shift)
    nose_shade = tuple(int(c * 0.7) for c in face["skin"])
    cv2.polylines(img, [_poly(lm[27:31])], False, nose_shade, 1, aa, shift)
    cv2.polylines(img, [_poly(lm[31:36])], False, nose_shade, 2, aa, shift)
    cv2.fillPoly(img, [_poly(lm[48:60])], face["lips"], aa, shift)
    cv2.fillPoly(img, [_poly(lm[60:68])], (40, 30, 60), aa, shift)
    return img


OPENFACE_HEADER = (["frame", "face_id", "timestamp", "confidence", "success"]
                   + [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
                   + [keypoints.au_column(a) for a in keypoints.OPENFACE_AUS])


def write_openface_csv(path, landmarks, aus_table, fps=FACE_FPS):
    """An OpenFace FeatureExtraction-style CSV (", "-separated, one row per frame)."""
    rows = [", ".join(OPENFACE_HEADER)]
    for t, (lm, aus) in enumerate(zip(landmarks, aus_table)):
        values = ([str(t + 1), "0", f"{t / fps:.3f}", "0.98", "1"]
                  + [f"{v:.2f}" for v in lm[:, 0]] + [f"{v:.2f}" for v in lm[:, 1]]
                  + [f"{v:.2f}" for v in aus])
        rows.append(", ".join(values))
    with open(path, "w") as f:
        f.write("\n".join(rows) + "\n")


def write_faces(out_dir, clips, seed=0, num_subjects=None, num_classes=None):
    """Writes `clips` MUG-like takes: `<subject>/<emotion>/take<NNN>/img_<TTTT>.jpg` (128x128) and
    `<subject>/<emotion>/take<NNN>/openface.csv`. Emotions cycle so every subject shows all of
    them when `clips >= num_classes * num_subjects`. Returns the take ids
    (`<subject>/<emotion>/<take>`).

    num_classes: the first 1..6 of `classes.EMOTIONS` (None: all six).
    """
    import cv2
    num_classes = len(classes.EMOTIONS) if num_classes is None else num_classes
    emotions = classes.first_classes(classes.EMOTIONS, num_classes, "faces")
    num_subjects = num_subjects or default_num_subjects(clips, len(emotions))
    faces = [_subject_face(np.random.default_rng(s))
             for s in np.random.SeedSequence([seed, 3]).spawn(num_subjects)]
    clip_seeds = np.random.SeedSequence([seed, 4]).spawn(clips)
    written = []
    for i in range(clips):
        rng = np.random.default_rng(clip_seeds[i])
        emotion = emotions[i % len(emotions)]
        subject = (i // len(emotions)) % num_subjects
        take = i // (len(emotions) * num_subjects)
        num_frames = int(rng.integers(98, 111))
        aus_table = au_timeline(emotion, num_frames, rng)
        landmarks, unit = face_landmarks(faces[subject], aus_table, rng)
        bg = background(rng, FACE_FRAME_SIZE, FACE_FRAME_SIZE, dark=rng.random() < 0.5)
        clip_id = f"{subject_name(subject)}/{emotion}/take{take:03d}"
        take_dir = os.path.join(out_dir, clip_id)
        os.makedirs(take_dir, exist_ok=True)
        for t in range(num_frames):
            frame = render_face_frame(bg, landmarks[t], faces[subject], unit)
            cv2.imwrite(os.path.join(take_dir, f"img_{t:04d}.jpg"), frame,
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
        write_openface_csv(os.path.join(take_dir, "openface.csv"), landmarks, aus_table)
        written.append(clip_id)
    return written
