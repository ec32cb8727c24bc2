"""What the synthetic gestures and faces share: identity names, colours, backgrounds and the
fixed-point precision of their anti-aliased drawing."""

import numpy as np

SUB = 16  # cv2 fixed-point shift of 4 bits: sub-pixel anti-aliased drawing


def subject_name(i):
    return f"subject{i:02d}"


def default_num_subjects(clips, num_classes):
    """Enough identities for a by-subject split, each seeing every class when clips allow."""
    return int(np.clip(clips // max(num_classes, 1), 3, 20)) if clips >= 3 else max(clips, 1)


def random_colour(rng, value_range, sat_range=(0.45, 0.95)):
    """A BGR colour from a random hue with saturation/value in the given ranges."""
    import cv2
    hsv = np.uint8([[[rng.integers(0, 180), int(255 * rng.uniform(*sat_range)),
                      int(255 * rng.uniform(*value_range))]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def background(rng, width, height, dark):
    """A textured background: base colour plus smooth noise, stripes or a soft checkerboard."""
    import cv2
    base = np.array(random_colour(rng, (0.15, 0.35) if dark else (0.7, 0.9), (0.0, 0.35)), float)
    kind = rng.integers(0, 3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == 0:
        noise = rng.normal(size=(rng.integers(3, 8), rng.integers(4, 10))).astype(np.float32)
        tex = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC) * 14
    elif kind == 1:
        angle = rng.uniform(0, np.pi)
        tex = 12 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) / rng.uniform(6, 16))
    else:
        cell = rng.uniform(18, 40)
        tex = 10 * np.sign(np.sin(xx / cell * np.pi) * np.sin(yy / cell * np.pi))
    img = base[None, None, :] + tex[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)
