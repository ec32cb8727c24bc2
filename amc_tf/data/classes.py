"""Motion class vocabularies of both dataset styles: the labels shared by data, training, serving.

Which vocabulary a dataset style uses, and how many of its classes by default, is part of the
style's description (`amc_tf.data.datasets`). Gestures (NATOPS-style, B.1) know up to 24 classes;
every gesture is defined relative to the body (one-arm gestures use either arm), so a horizontal
flip (B.1 augmentation) never changes the class. Faces (MUG-style) have the 6 basic emotions.
"""

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


def first_classes(vocabulary, num_classes, dataset):
    """The first `num_classes` names of `dataset`'s `vocabulary`; index i is motion_class i."""
    n = int(num_classes)
    if not 1 <= n <= len(vocabulary):
        raise ValueError(f"{dataset} has 1..{len(vocabulary)} classes, got num_classes="
                         f"{num_classes}")
    return list(vocabulary[:n])
