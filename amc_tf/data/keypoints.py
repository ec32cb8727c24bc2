"""Keypoint definitions of both dataset styles (appendix B.1) and their horizontal-flip maps.

The dataset style descriptions (`amc_tf.data.datasets`) tie each style to its keypoints here.
"""

# NATOPS: the 9 body joints the paper uses, in this order (L/R are the person's own sides).
GESTURE_JOINTS = ("head", "chest", "navel", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
                  "l_wrist", "r_wrist")

# MUG: OpenFace's 68-point template; the paper's 11 keypoints are landmarks 2, 9, 16, 20, 25, 38,
# 42, 45, 47, 52, 58 in the template's 1-based numbering (Figure D) = these 0-based CSV columns.
FACE_LANDMARK_IDS = (1, 8, 15, 19, 24, 37, 41, 44, 46, 51, 57)
NUM_FACE_LANDMARKS = 68


def _mirror_68(i):
    """The 0-based landmark that a horizontal flip maps landmark `i` onto (68-point template)."""
    if i <= 16:                      # jaw 0..16
        return 16 - i
    if i <= 26:                      # brows 17..21 <-> 26..22
        return 43 - i
    if i <= 30:                      # nose bridge
        return i
    if i <= 35:                      # nostrils 31..35
        return 66 - i
    eyes = {36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46}
    eyes.update({v: k for k, v in eyes.items()})
    if i in eyes:
        return eyes[i]
    if i <= 54:                      # outer lip top 48..54
        return 102 - i
    if i <= 59:                      # outer lip bottom 55..59
        return 114 - i
    if i <= 64:                      # inner lip top 60..64
        return 124 - i
    return 132 - i                   # inner lip bottom 65..67


MIRROR_68 = tuple(_mirror_68(i) for i in range(NUM_FACE_LANDMARKS))


def _region_68(i):
    """The facial part of 0-based landmark `i` of the 68-point template."""
    for last, region in ((16, "jaw"), (26, "brow"), (35, "nose"), (47, "eye")):
        if i <= last:
            return region
    return "lip"


# All 68 landmarks by region and 1-based template number (Figure D), e.g. "brow_20", and the
# paper's 11 face keypoints among them.
FACE_LANDMARKS = tuple(f"{_region_68(i)}_{i + 1}" for i in range(NUM_FACE_LANDMARKS))
FACE_KEYPOINTS = tuple(FACE_LANDMARKS[i] for i in FACE_LANDMARK_IDS)

# Flip permutations: after mirroring x, keypoint j takes the coordinates of FLIP[j] (swap L/R).
def _other_side(name):
    return name.replace("l_", "#").replace("r_", "l_").replace("#", "r_")


GESTURE_FLIP = tuple(GESTURE_JOINTS.index(_other_side(n)) for n in GESTURE_JOINTS)
FACE_FLIP = tuple(FACE_LANDMARK_IDS.index(MIRROR_68[i]) for i in FACE_LANDMARK_IDS)

# OpenFace's AU intensity outputs (`AUxx_r` columns).
OPENFACE_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)

# Table A (EMFACS prototypes), restricted to the AUs OpenFace estimates: the AUs whose maximum
# intensity marks a clip's peak frame (B.1).
EMFACS_AUS = {
    "anger": (4, 5, 7, 10, 17, 23, 25, 26),
    "disgust": (9, 10, 17, 25, 26),
    "fear": (1, 2, 4, 5, 20, 25, 26),
    "happy": (6, 12),
    "sad": (1, 4, 6, 15, 17, 25, 26),
    "surprise": (1, 2, 5, 26),
}


def au_column(au):
    return f"AU{au:02d}_r"
