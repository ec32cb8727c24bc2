"""Motion class names per dataset: the label vocabulary shared by data, training, serving.

`gestures` (NATOPS-style, B.1) has up to 24 classes; the synthetic set uses the first 12 by default.
Every gesture is defined relative to the body (one-arm gestures use either arm), so a horizontal
flip (B.1 augmentation) never changes the class. `faces` (MUG-style) has the 6 basic emotions.
"""

import os

# Synthetic NATOPS-like gestures, most distinct first (the default 12 are clearly different arm
# trajectories; 12-23 are variants in amplitude, frequency or arm combination).
GESTURE_CLASSES = (
    "raise_both_arms", "raise_one_arm", "wave_one_arm", "wave_both_overhead",
    "circle_one_arm", "circle_both_arms", "point_sideways", "cross_arms",
    "flap_both_arms", "beckon_one_arm", "pump_both_forearms", "one_up_one_out",
    "half_raise_both", "half_raise_one", "fast_wave_one", "fast_flap_both",
    "circle_one_reverse", "circle_both_reverse", "point_up_one", "hold_t_pose",
    "swing_both_inward", "beckon_both_arms", "wave_low_one", "alternate_raise",
)
DEFAULT_GESTURE_CLASSES = 12

# MUG's six basic emotions (B.1), in the paper's order.
EMOTIONS = ("anger", "disgust", "fear", "happy", "sad", "surprise")

# The file at the root of a gestures raw directory that lists its class names, one per line.
CLASSES_FILE = "classes.txt"


def class_names(dataset, num_classes=None):
    """Class names of `dataset` ("gestures" or "faces"); index i is motion_class i.

    `num_classes` None means the dataset default (12 gestures, 6 emotions).
    """
    if dataset == "faces":
        if num_classes not in (None, len(EMOTIONS)):
            raise ValueError(f"faces has exactly {len(EMOTIONS)} emotion classes, "
                             f"got num_classes={num_classes}")
        return list(EMOTIONS)
    if dataset == "gestures":
        n = DEFAULT_GESTURE_CLASSES if num_classes is None else int(num_classes)
        if not 1 <= n <= len(GESTURE_CLASSES):
            raise ValueError(f"gestures supports 1..{len(GESTURE_CLASSES)} classes, got {n}")
        return list(GESTURE_CLASSES[:n])
    raise ValueError(f"unknown dataset {dataset!r}; choose 'gestures' or 'faces'")


def read_class_names(raw_dir, dataset):
    """The class names a raw directory declares (gestures: `classes.txt`), else the defaults."""
    if dataset == "gestures":
        # Beam's filesystems (local, gs://) rather than tf.io.gfile: no TensorFlow import here.
        from apache_beam.io.filesystems import FileSystems
        path = os.path.join(raw_dir, CLASSES_FILE)
        if FileSystems.exists(path):
            with FileSystems.open(path, compression_type="uncompressed") as f:
                names = [line.strip() for line in f.read().decode().splitlines() if line.strip()]
            if not names:
                raise ValueError(f"{path} lists no class names")
            return names
    return class_names(dataset)


def num_classes_in(raw_dir, dataset):
    """How many motion classes the raw data at `raw_dir` uses."""
    return len(read_class_names(raw_dir, dataset))
