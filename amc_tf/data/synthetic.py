"""Synthetic datasets with the structure of NATOPS (gestures) and MUG (faces), appendix B.1.

Neither real dataset can be downloaded here, so these renderers write raw clips in exactly the
layouts the real-data adapters read (see `amc_tf.data.adapters`), and preprocessing cannot tell
them apart. Everything is deterministic for a seed. The gestures are rendered here, the faces in
`synthetic_faces`; both use `synthetic_scene`.

    write_gestures(out_dir, clips, seed, num_classes=None)  # NATOPS-like, 9 joints (12 classes)
    write_faces(out_dir, clips, seed)                        # MUG-like, OpenFace 68 landmarks + AUs
"""

import json
import os

import numpy as np

from amc_tf.data import classes, keypoints
from amc_tf.data.synthetic_scene import (SUB, background, default_num_subjects, random_colour,
                                          subject_name)
from amc_tf.data.synthetic_faces import write_faces  # noqa: F401 - one import for both writers

# NATOPS videos are 320x240 at 20 fps; raw clips are long enough for stride 3 (31 * 3 + 1 frames).
GESTURE_FRAME_W, GESTURE_FRAME_H = 320, 240
GESTURE_FPS = 20
GESTURE_MIN_FRAMES = 96
VIDEO_EXT = ".avi"
VIDEO_FOURCC = "MJPG"  # round-trips with opencv-python-headless (no external codecs needed)

_NEUTRAL = 12.0   # degrees: arms hang slightly away from the body


def _h(u):
    """0 -> 1 -> 0 over one cycle, starting and ending at rest."""
    return (1.0 - np.cos(2.0 * np.pi * u)) / 2.0


def _s(u):
    return np.sin(2.0 * np.pi * u)


def _gesture_angles(name, u, ramp):
    """Arm angles for one gesture: ((shoulder, forearm) of the active arm, same of the other arm).

    Angles are degrees from straight down, positive = outward/upward on that arm's own side, so the
    same numbers describe either arm and a horizontal flip keeps the class. `u` is the gesture
    phase (cycles), `ramp` in [0, 1] eases held poses in from the neutral start.
    """
    n = _NEUTRAL
    rest = (np.full_like(u, n), np.full_like(u, n))

    def held(s, f):
        return n + ramp * (s - n), n + ramp * (f - n)

    def raise_to(a, freq=1.0):
        th = n + (a - n) * _h(u * freq)
        return th, th

    if name == "raise_both_arms":
        return raise_to(165), raise_to(165)
    if name == "raise_one_arm":
        return raise_to(165), rest
    if name == "wave_one_arm":
        return held(125, 135 + 40 * _s(2 * u)), rest
    if name == "wave_both_overhead":
        th = held(160 + 25 * _s(u), 165 + 30 * _s(u))
        return th, th
    if name == "circle_one_arm":
        th = n + 360 * u
        return (th, th), rest
    if name == "circle_both_arms":
        th = n + 360 * u
        return (th, th), (th, th)
    if name == "point_sideways":
        return held(90, 90 + 8 * _s(2 * u)), rest
    if name == "cross_arms":
        a = (n + (-30 - n) * _h(u), n + (-105 - n) * _h(u))
        return a, a
    if name == "flap_both_arms":
        th = held(60 + 35 * _s(2 * u), 60 + 35 * _s(2 * u))
        return th, th
    if name == "beckon_one_arm":
        # Upper arm held at 65, not 90: wave_one_arm has the same forearm cycle, and with
        # amplitude jitter a 90 upper arm came within ~1.5 px (64x64) of wave's 125.
        return held(65, 95 + 75 * _h(2 * u)), rest
    if name == "pump_both_forearms":
        a = held(40, 95 + 45 * _s(2 * u))
        return a, a
    if name == "one_up_one_out":
        return raise_to(170), raise_to(90)
    if name == "half_raise_both":
        return raise_to(90), raise_to(90)
    if name == "half_raise_one":
        return raise_to(90), rest
    if name == "fast_wave_one":
        return held(100, 110 + 35 * _s(4 * u)), rest
    if name == "fast_flap_both":
        th = held(50 + 20 * _s(4 * u), 50 + 20 * _s(4 * u))
        return th, th
    if name == "circle_one_reverse":
        th = n - 360 * u
        return (th, th), rest
    if name == "circle_both_reverse":
        th = n - 360 * u
        return (th, th), (th, th)
    if name == "point_up_one":
        return held(175, 175 + 5 * _s(2 * u)), rest
    if name == "hold_t_pose":
        a = held(90, 90 + 5 * _s(2 * u))
        return a, a
    if name == "swing_both_inward":
        a = (n + (-60 - n) * _h(u), n + (-60 - n) * _h(u))
        return a, a
    if name == "beckon_both_arms":
        a = held(90, 95 + 75 * _h(2 * u))
        return a, a
    if name == "wave_low_one":
        return held(40, 60 + 45 * _s(2 * u)), rest
    if name == "alternate_raise":
        first = np.mod(u, 1.0) < 0.5
        up = n + (165 - n) * _h(2 * u)
        return (np.where(first, up, n),) * 2, (np.where(first, n, up),) * 2
    raise ValueError(f"unknown gesture {name!r}")


def gesture_joints(name, num_frames, rng, body):
    """Per-frame 9-joint positions (T, 9, 2) of one performance, jittered in speed, amplitude, timing.

    The clip starts in the neutral pose; the gesture follows after a short random lead-in.
    """
    t = np.arange(num_frames, dtype=np.float64)
    lead = rng.integers(0, 5)
    period = rng.uniform(21.0, 27.0)                      # speed jitter
    amplitude = rng.uniform(0.85, 1.1)                    # amplitude jitter
    warp = rng.uniform(-0.06, 0.06)                       # uneven tempo within the clip
    active = np.maximum(t - lead, 0.0)
    u = active / period
    u = u + warp * np.sin(2 * np.pi * u / 3.0)
    ramp = np.clip(active / rng.uniform(6.0, 9.0), 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)
    (a_s, a_f), (o_s, o_f) = _gesture_angles(name, u, ramp)
    a_s, a_f, o_s, o_f = [_NEUTRAL + amplitude * (np.asarray(x, float) - _NEUTRAL)
                          for x in (a_s, a_f, o_s, o_f)]
    active_is_left = rng.random() < 0.5                   # one-arm gestures use either arm
    left, right = ((a_s, a_f), (o_s, o_f)) if active_is_left else ((o_s, o_f), (a_s, a_f))

    scale = body["scale"]
    sway = np.stack([1.5 * np.sin(2 * np.pi * t / rng.uniform(40, 70) + rng.uniform(0, 6)),
                     0.8 * np.sin(2 * np.pi * t / rng.uniform(30, 60) + rng.uniform(0, 6))], -1)
    chest = np.array(body["chest"], float) + sway
    joints = np.zeros((num_frames, len(keypoints.GESTURE_JOINTS), 2))
    joints[:, 0] = chest + [0, -body["neck"] * scale]
    joints[:, 1] = chest
    joints[:, 2] = chest + [0, body["torso"] * scale]
    for side, sign, (th_s, th_f) in (("l", 1.0, left), ("r", -1.0, right)):
        # The person faces the camera: their left side is on the image's right (+x).
        shoulder = chest + [sign * body["shoulder_w"] * scale, -body["shoulder_h"] * scale]
        rs, rf = np.radians(th_s), np.radians(th_f)
        elbow = shoulder + body["upper_arm"] * scale * np.stack([sign * np.sin(rs), np.cos(rs)], -1)
        wrist = elbow + body["forearm"] * scale * np.stack([sign * np.sin(rf), np.cos(rf)], -1)
        joints[:, keypoints.GESTURE_JOINTS.index(f"{side}_shoulder")] = shoulder
        joints[:, keypoints.GESTURE_JOINTS.index(f"{side}_elbow")] = elbow
        joints[:, keypoints.GESTURE_JOINTS.index(f"{side}_wrist")] = wrist
    return joints


def _pt(p):
    return (int(round(p[0] * SUB)), int(round(p[1] * SUB)))


def render_gesture_frame(bg, joints, body):
    """Draws one anti-aliased frame of the person (joints (9, 2) in pixels) over `bg`."""
    import cv2
    img = bg.copy()
    aa, shift = cv2.LINE_AA, 4
    j = {name: joints[i] for i, name in enumerate(keypoints.GESTURE_JOINTS)}
    s = body["scale"]
    limb = max(2, int(round(body["limb"] * s)))
    hip_l = j["navel"] + [body["hip_w"] * s, 12 * s]
    hip_r = j["navel"] + [-body["hip_w"] * s, 12 * s]
    for hip, sign in ((hip_l, 1), (hip_r, -1)):
        foot = hip + [sign * 6 * s, 58 * s]
        cv2.line(img, _pt(hip), _pt(foot), body["leg_colour"], limb + 3, aa, shift)
    torso = np.array([_pt(j["l_shoulder"]), _pt(j["r_shoulder"]), _pt(hip_r), _pt(hip_l)],
                     np.int32)
    cv2.fillConvexPoly(img, torso, body["torso_colour"], aa, shift)
    cv2.line(img, _pt(j["head"]), _pt(j["chest"]), body["skin_colour"], limb, aa, shift)
    cv2.circle(img, _pt(j["head"]), int(body["head_r"] * s * SUB), body["skin_colour"], -1, aa,
               shift)
    cv2.ellipse(img, _pt(j["head"] + [0, -body["head_r"] * s * 0.35]),
                (int(body["head_r"] * s * 1.02 * SUB), int(body["head_r"] * s * 0.7 * SUB)),
                0, 180, 360, body["hair_colour"], -1, aa, shift)
    for side in ("l", "r"):
        sh, el, wr = j[f"{side}_shoulder"], j[f"{side}_elbow"], j[f"{side}_wrist"]
        cv2.line(img, _pt(sh), _pt(el), body["arm_colour"], limb + 1, aa, shift)
        cv2.line(img, _pt(el), _pt(wr), body["forearm_colour"], limb, aa, shift)
        cv2.circle(img, _pt(wr), int((limb * 0.75 + 1) * SUB), body["skin_colour"], -1, aa, shift)
    return img


def _subject_body(rng):
    """Identity traits that stay with a subject (proportions, clothing)."""
    return dict(
        scale=rng.uniform(0.9, 1.05), limb=rng.uniform(7.0, 12.0), neck=rng.uniform(40, 46),
        torso=rng.uniform(38, 46), shoulder_w=rng.uniform(20, 25), shoulder_h=rng.uniform(9, 13),
        upper_arm=rng.uniform(32, 36), forearm=rng.uniform(29, 33), hip_w=rng.uniform(11, 15),
        head_r=rng.uniform(14, 17),
        torso_colour=random_colour(rng, (0.45, 0.95)),
        arm_colour=random_colour(rng, (0.45, 0.95)),
        leg_colour=random_colour(rng, (0.25, 0.7)),
        skin_colour=random_colour(rng, (0.55, 0.95), (0.2, 0.6)),
        hair_colour=random_colour(rng, (0.05, 0.5), (0.2, 0.8)),
    )


def _clip_body(subject_body, rng):
    """Per-clip appearance: position, scale, clothing shade and limb thickness vary a little."""
    body = dict(subject_body)
    body["scale"] = subject_body["scale"] * rng.uniform(0.94, 1.06)
    body["limb"] = subject_body["limb"] * rng.uniform(0.85, 1.15)
    body["chest"] = (GESTURE_FRAME_W / 2 + rng.uniform(-25, 25),
                     GESTURE_FRAME_H / 2 - 15 + rng.uniform(-10, 10))
    for key in ("torso_colour", "arm_colour", "leg_colour"):  # lighting/clothing shade per clip
        shade = rng.uniform(0.8, 1.15)
        body[key] = tuple(int(np.clip(c * shade, 0, 255)) for c in body[key])
    body["forearm_colour"] = tuple(int(np.clip(c * rng.uniform(0.75, 1.0), 0, 255))
                                   for c in body["arm_colour"])
    return body


def _write_video(path, frames, fps):
    import cv2
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*VIDEO_FOURCC), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {VIDEO_FOURCC} video to {path}")
    for frame in frames:
        writer.write(frame)
    writer.release()


def write_gestures(out_dir, clips, seed=0, num_classes=None, num_subjects=None,
                   min_frames=GESTURE_MIN_FRAMES):
    """Writes `clips` NATOPS-like gesture clips to `out_dir` in the gestures adapter's layout.

    Layout: `classes.txt` (one class name per line) and, per clip, `<subject>/<clip>.avi` (MJPG
    video, 320x240, BGR) with `<subject>/<clip>.json` ({"label", "subject", "fps", "joint_names",
    "joints": T lists of 18 floats (x, y per joint, frame pixels)}). Clips cycle through the
    classes so every subject performs every class when `clips >= num_classes * num_subjects`.
    num_classes: the first 1..24 of `classes.GESTURE_CLASSES` (None: the default 12).

    Returns the list of written clip ids (`<subject>/<clip>`).
    """
    num_classes = classes.DEFAULT_GESTURE_CLASSES if num_classes is None else num_classes
    names = classes.first_classes(classes.GESTURE_CLASSES, num_classes, "gestures")
    num_subjects = num_subjects or default_num_subjects(clips, len(names))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, classes.CLASSES_FILE), "w") as f:
        f.write("\n".join(names) + "\n")
    subject_rngs = np.random.SeedSequence([seed, 1]).spawn(num_subjects)
    bodies = [_subject_body(np.random.default_rng(s)) for s in subject_rngs]
    clip_seeds = np.random.SeedSequence([seed, 2]).spawn(clips)
    written = []
    for i in range(clips):
        rng = np.random.default_rng(clip_seeds[i])
        label = names[i % len(names)]
        subject = (i // len(names)) % num_subjects
        body = _clip_body(bodies[subject], rng)
        num_frames = int(min_frames + rng.integers(0, 15))
        joints = gesture_joints(label, num_frames, rng, body)
        bg = background(rng, GESTURE_FRAME_W, GESTURE_FRAME_H, dark=rng.random() < 0.5)
        frames = [render_gesture_frame(bg, joints[t], body) for t in range(num_frames)]
        clip_id = f"{subject_name(subject)}/clip{i:05d}_{label}"
        os.makedirs(os.path.join(out_dir, subject_name(subject)), exist_ok=True)
        _write_video(os.path.join(out_dir, clip_id + VIDEO_EXT), frames, GESTURE_FPS)
        annotation = {
            "label": label, "subject": subject_name(subject), "fps": GESTURE_FPS,
            "joint_names": list(keypoints.GESTURE_JOINTS),
            "joints": np.round(joints.reshape(num_frames, -1), 2).tolist(),
        }
        with open(os.path.join(out_dir, clip_id + ".json"), "w") as f:
            json.dump(annotation, f)
        written.append(clip_id)
    return written
