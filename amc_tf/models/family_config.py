"""What every family's config shares: the B.3 judge's sizes (one table, so that every model of
one preset and frame size is judged by the same network), the JSON round trip, and how a preset
is sized to the data.

No Keras here: configs are read where TensorFlow is not loaded yet (command lines, pipeline
construction).
"""

import dataclasses
import json
from typing import Optional, Tuple

# The judge of the small presets, by preset name: appendix B.3's network, narrower (the paper
# presets keep the field defaults below). At cpu the families' 32x32 models share one judge
# of 32x32 frames; a model of 64x64 frames (AMC-GAN's cpu) gets JUDGE_SIZES_64's instead.
JUDGE_SIZES = {
    "cpu": dict(clf_filters=(16, 32, 64, 128), clf_strides=(2, 2, 2, 4), clf_fc_units=64,
                clf_dropout=0.5, clf_batch_size=16, clf_learning_rate=1e-3, clf_frame_size=32),
    "test": dict(clf_filters=(4, 8, 8, 8), clf_fc_units=8, clf_batch_size=4),
}
# (JUDGE_SIZES_64 replaces fields that JUDGE_SIZES sets, so either entry defines the judge.)
# The cpu judge of 64x64 models sees the frames at 64x64: its first conv3d strides 4 in space
# (2 in time), so every later layer has the 32x32 judge's sizes and the step its cost. On the
# synthetic gestures two one-arm classes differ by a few pixels of elbow height at 64x64, which a
# 32x32 judge hardly sees: in the last 10 of 60 epochs on seed 1, real-clip accuracy 0.88-0.96
# (three 32x32 recipes, mean eval loss 0.17-0.29) against 0.95-0.975 (0.10) (docs/measurements.md,
# "The evaluation's judges").
JUDGE_SIZES_64 = {
    "cpu": dict(clf_frame_size=64, clf_strides=((2, 4, 4), 2, 2, 4), clf_dropout=0.2,
                clf_learning_rate=3e-3),
}
# Sizes of the cpu / test presets when the data does not give them: the built-in gestures'.
DEFAULT_DATASET = "gestures"


@dataclasses.dataclass
class FamilyConfig:
    """Base of every family's config dataclass: the judge's fields and (de)serialisation.
    Subclasses add their fields (all with defaults) and override `validate`."""

    # 3D-CNN motion classifier (AMC-GAN appendix B.3), the evaluation's judge.
    clf_filters: Tuple[int, ...] = (64, 128, 256, 512)
    # Each an int (time and space) or a (time, height, width) triple.
    clf_strides: Tuple = (2, 2, 2, 4)
    clf_fc_units: int = 128
    clf_dropout: float = 0.5
    clf_learning_rate: float = 2e-4
    clf_batch_size: int = 32
    # H = W of the frames the judge sees; None: the model's frame_size. Larger videos are
    # area-downscaled to it (MotionClassifier).
    clf_frame_size: Optional[int] = None
    # Not in the paper: 0, or the momentum of an exponential moving average of the judge's
    # weights, which validation and the kept epoch then use (train.train_classifier).
    clf_weight_ema: float = 0.0

    def validate(self):
        """The judge's fields (every family's `validate` calls this first): a bad value is named
        when the config is made, not after preprocessing, and the classifier never pairs
        filters and strides silently short."""
        if len(self.clf_strides) != len(self.clf_filters):
            raise ValueError(f"clf_strides needs one stride per conv3d of clf_filters "
                             f"({len(self.clf_filters)}), got {len(self.clf_strides)}")
        for stride in self.clf_strides:
            parts = stride if isinstance(stride, tuple) else (stride,) * 3
            if len(parts) != 3 or not all(isinstance(x, int) and x >= 1 for x in parts):
                raise ValueError(f"each of clf_strides must be an int >= 1 or a (time, height, "
                                 f"width) triple of them, got {stride!r}")
        for field in ("clf_fc_units", "clf_batch_size"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if not 0.0 <= self.clf_dropout < 1.0:
            raise ValueError(f"clf_dropout must be in [0, 1), got {self.clf_dropout}")
        if not self.clf_learning_rate > 0:
            raise ValueError(f"clf_learning_rate must be > 0, got {self.clf_learning_rate}")
        if self.clf_frame_size is not None and self.clf_frame_size < 1:
            raise ValueError(f"clf_frame_size must be None (the model's) or >= 1, got "
                             f"{self.clf_frame_size}")
        if not 0.0 <= self.clf_weight_ema < 1.0:
            raise ValueError(f"clf_weight_ema must be 0 (off) or a momentum in (0, 1), got "
                             f"{self.clf_weight_ema}")
        return self

    @property
    def judge_frame_size(self):
        """H = W of the B.3 judge's frames."""
        return judge_frame_size(self)

    @property
    def frame_stride(self):
        """The model's frames are every frame_stride-th of the clip's source_frames."""
        return self.source_frames // self.num_frames

    @property
    def velocity_dim(self):
        """The batches' velocities per step, 2k (only AMC-GAN's model reads them)."""
        return 2 * self.num_keypoints

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @staticmethod
    def _tuples(values):
        """Lists (from JSON or a command line) as the tuples the configs hold."""
        def as_tuple(v):
            return tuple(as_tuple(x) for x in v) if isinstance(v, (list, tuple)) else v
        return {k: as_tuple(v) for k, v in values.items()}

    @classmethod
    def from_dict(cls, d):
        """The config of `to_dict` (lists back to tuples); keys of other versions are dropped."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**cls._tuples({k: v for k, v in d.items() if k in fields})).validate()

    @classmethod
    def from_json(cls, s):
        return cls.from_dict(json.loads(s))

    def replace(self, **changes):
        """A validated copy with `changes` (lists become tuples, as in from_dict)."""
        return dataclasses.replace(self, **self._tuples(changes)).validate()


def judge_frame_size(config):
    """H = W of the B.3 judge's frames for any family's config (also a namespace of an old
    file without clf_frame_size): clf_frame_size where set, else the model's frame_size."""
    return getattr(config, "clf_frame_size", None) or config.frame_size


def judge_sizes(preset, frame_size=None):
    """The judge's fields of a preset for models of `frame_size` frames (empty: the paper's,
    the field defaults): every model of one preset and frame size is judged by one network."""
    sizes = dict(JUDGE_SIZES.get(preset, {}))
    if frame_size == 64:
        sizes.update(JUDGE_SIZES_64.get(preset, {}))
    return sizes


def data_sizes(num_classes, num_keypoints):
    """(classes, keypoints) of a preset sized to the data: the given ones, else the default
    dataset style's."""
    from amc_tf.data import datasets
    style = datasets.get(DEFAULT_DATASET)
    return (style.default_num_classes if num_classes is None else int(num_classes),
            style.num_keypoints if num_keypoints is None else int(num_keypoints))


def sized_preset(name, paper, cpu, test, num_classes=None, num_keypoints=None):
    """The preset `name` of a family: a paper preset (`paper`: {name: builder()}) fixes its
    classes and keypoints and rejects others; "cpu" / "test" (builders of (num_classes,
    num_keypoints)) are sized to the data (`data_sizes`). Returns the validated config."""
    if name in paper:
        config = check_fixed_sizes(paper[name](), num_classes, num_keypoints)
    elif name in ("cpu", "test"):
        config = (cpu if name == "cpu" else test)(*data_sizes(num_classes, num_keypoints))
    else:
        raise ValueError(f"unknown preset {name!r}; choose from {(*paper, 'cpu', 'test')}")
    return config.validate()


def check_fixed_sizes(config, num_classes, num_keypoints):
    """A paper preset fixes its classes and keypoints: other given sizes are an error."""
    for given, fixed, what in ((num_classes, config.num_classes, "num_classes"),
                               (num_keypoints, config.num_keypoints, "num_keypoints")):
        if given is not None and int(given) != fixed:
            raise ValueError(f"preset {config.name} fixes {what}={fixed}, got {given}")
    return config
