"""The dataset styles of appendix B.1, each described once: NATOPS-like gestures and MUG-like faces.

A `DatasetStyle` holds everything that differs between the styles, from the raw layout to the
crop rule; the rest of amc_tf reads its fields instead of testing a dataset's name.

    style = datasets.get("gestures")          # unknown name: ValueError naming the choices
    style.num_keypoints, style.keypoint_names, style.flip_map
    style.num_landmarks, style.landmark_names, style.landmark_flip_map
    style.class_names(raw_dir=RAW, num_classes=12)
    refs = style.list_clips(RAW)              # then style.load_clip(ref, class_names, 32)
    style.class_names_source(RAW)             # where the class names come from (summary.json)
    datasets.names()                          # ("gestures", "faces"), e.g. for argparse choices

A new style is one more `DatasetStyle` in `_STYLES`, with its adapter, rules and synthetic writer.
"""

import dataclasses
import logging
import posixpath
from typing import Callable, Optional, Tuple

from amc_tf.data import adapters, classes, clip_rules, keypoints, synthetic, synthetic_faces


@dataclasses.dataclass(frozen=True)
class DatasetStyle:
    """One dataset style: its keypoints and landmarks, B.1 rules, raw layout, classes and
    synthetic writer.

    Attributes:
      name: the style's name on the command line, in configs and in `summary.json`.
      paper_dataset: the paper's dataset that the style follows.
      keypoint_names: the paper's keypoints, in the order of the `keypoints` feature.
      paper_keypoint_ids: where those keypoints are among the landmarks.
      flip_map: after mirroring x, keypoint j takes the coordinates of keypoint flip_map[j].
      landmark_names: every point the adapter loads per frame (the dataset's own annotation), in
        the order of the `landmarks` feature; the keypoint detector of the B.4 evaluation learns
        them all.
      landmark_flip_map: after mirroring x, landmark i takes the coordinates of landmark
        landmark_flip_map[i].
      frames_before: how many of the 32 sampled frames precede the anchor frame (B.1).
      anchor_frame: RawClip -> the frame the 32-frame window is placed around (B.1).
      crop_box: the sampled frames' raw landmarks (T, L, 2) -> (x0, y0, side) of the crop (B.1).
      list_clips: raw dir -> clip refs (paths only; cheap, at pipeline construction); data files
        at unexpected depths come as refs that load_clip rejects (`unexpected_layout`).
      load_clip: (ref, class_names, min_frames, lazy=False) -> `adapters.RawClip`, or
        `RejectedClip`; lazy: read the annotations and headers only, the frames are decoded
        on demand (`RawClip.frames.read`).
      raw_layout: the raw layout in a few words, for error messages.
      input_pattern: the raw files (relative to the raw dir) that ExampleGen's driver fingerprints.
      vocabulary: the class names the style knows, in motion_class order.
      default_num_classes: how many of them a run uses when nothing says otherwise.
      classes_file: the file in which a raw dir declares its own class names; None: it cannot.
      write_synthetic: (out_dir, clips, seed=, num_classes=, num_subjects=) -> written clip ids;
        pass the options by keyword (None: the writer's defaults).
      strides, flip_probability: the augmentation defaults (B.1).
      paper_augmentation: whether the paper augments this dataset (B.1 does MUG; it takes each
        NATOPS clip once, 9,600 - 765 = 8,835, and real NATOPS gestures are left/right-specific,
        so a flip could change the class). The paper presets follow it (pipeline.configs).
    """
    name: str
    paper_dataset: str
    keypoint_names: Tuple[str, ...]
    paper_keypoint_ids: Tuple[int, ...]
    flip_map: Tuple[int, ...]
    landmark_names: Tuple[str, ...]
    landmark_flip_map: Tuple[int, ...]
    frames_before: int
    anchor_frame: Callable
    crop_box: Callable
    list_clips: Callable
    load_clip: Callable
    raw_layout: str
    input_pattern: str
    vocabulary: Tuple[str, ...]
    default_num_classes: int
    classes_file: Optional[str]
    write_synthetic: Callable
    strides: Tuple[int, ...] = clip_rules.STRIDES
    flip_probability: float = clip_rules.FLIP_PROBABILITY
    paper_augmentation: bool = True

    @property
    def num_keypoints(self):
        """k: keypoints per frame (the `keypoints` feature holds 2k numbers per frame)."""
        return len(self.keypoint_names)

    @property
    def num_landmarks(self):
        """L: landmarks per frame (the `landmarks` feature holds 2L numbers per frame)."""
        return len(self.landmark_names)

    def _classes_path(self, raw_dir):
        if raw_dir is None or self.classes_file is None:
            return None
        return posixpath.join(raw_dir.rstrip("/"), self.classes_file)

    def class_names(self, raw_dir=None, num_classes=None):
        """The class names of a run; index i is motion_class i.

        Those that `raw_dir` declares in its `classes_file` when it has one, else the first
        `default_num_classes` of the vocabulary (with a logged warning when the style could
        declare them); `num_classes` asks for the first N instead.
        Raw dirs may be local or any Beam filesystem (gs://...).
        """
        source = self._classes_path(raw_dir)
        declared = adapters.read_class_list(source) if source else None
        if declared is None:
            n = self.default_num_classes if num_classes is None else num_classes
            names = classes.first_classes(self.vocabulary, n, self.name)
            if source:
                logging.warning("%s does not exist: using the built-in %s class names %s; write "
                                "the raw data's own names there, one per line", source,
                                self.name, names)
            return names
        if num_classes is None:
            return declared
        if not 1 <= int(num_classes) <= len(declared):
            raise ValueError(f"num_classes={num_classes} but {source} lists {len(declared)} "
                             f"classes")
        return declared[:int(num_classes)]

    def class_names_source(self, raw_dir=None):
        """Where `class_names(raw_dir)` comes from, for summary.json: the classes file's path, or
        the built-in vocabulary (saying why)."""
        source = self._classes_path(raw_dir)
        if source and adapters.read_class_list(source) is not None:
            return source
        if source:
            return f"built-in vocabulary (no {self.classes_file} in {raw_dir})"
        return f"built-in vocabulary ({self.name} labels are fixed by the layout)"


_STYLES = {style.name: style for style in (
    DatasetStyle(
        name="gestures",
        paper_dataset="NATOPS",
        keypoint_names=keypoints.GESTURE_JOINTS,
        paper_keypoint_ids=tuple(range(len(keypoints.GESTURE_JOINTS))),  # all 9 joints
        flip_map=keypoints.GESTURE_FLIP,
        landmark_names=keypoints.GESTURE_JOINTS,  # NATOPS annotates just the 9 joints
        landmark_flip_map=keypoints.GESTURE_FLIP,
        # B.1 (NATOPS): 32 frames from the first, the neutral pose (the appearance condition).
        frames_before=0,
        anchor_frame=clip_rules.first_frame,
        crop_box=clip_rules.chest_crop_box,
        list_clips=adapters.list_gesture_clips,
        load_clip=adapters.load_gesture_clip,
        raw_layout=f"{classes.CLASSES_FILE} + <subject>/<clip>.avi + <subject>/<clip>.json",
        input_pattern="*/*.json",
        vocabulary=classes.GESTURE_CLASSES,
        default_num_classes=classes.DEFAULT_GESTURE_CLASSES,
        classes_file=classes.CLASSES_FILE,
        write_synthetic=synthetic.write_gestures,
        paper_augmentation=False,
    ),
    DatasetStyle(
        name="faces",
        paper_dataset="MUG",
        keypoint_names=keypoints.FACE_KEYPOINTS,
        paper_keypoint_ids=keypoints.FACE_LANDMARK_IDS,  # 11 of OpenFace's 68 landmarks
        flip_map=keypoints.FACE_FLIP,
        landmark_names=keypoints.FACE_LANDMARKS,  # B.4 uses all 68 OpenFace landmarks
        landmark_flip_map=keypoints.MIRROR_68,
        # B.1 (MUG): 32 frames around the AU peak, 23 before it and 8 after.
        frames_before=23,
        anchor_frame=clip_rules.au_peak_frame,
        crop_box=clip_rules.landmark_crop_box,
        list_clips=adapters.list_face_clips,
        load_clip=adapters.load_face_clip,
        raw_layout="<subject>/<emotion>/<take>/*.jpg + OpenFace *.csv",
        input_pattern="*/*/*/*.csv",
        vocabulary=classes.EMOTIONS,
        default_num_classes=len(classes.EMOTIONS),
        classes_file=None,  # the label is the emotion folder
        write_synthetic=synthetic_faces.write_faces,
    ),
)}


def names():
    """The registered style names, e.g. for argparse choices."""
    return tuple(_STYLES)


def get(name):
    """The `DatasetStyle` called `name`; ValueError naming the choices if there is none."""
    if not isinstance(name, str) or name not in _STYLES:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(names())}")
    return _STYLES[name]
