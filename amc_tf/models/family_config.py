"""What every family's config shares: the B.3 judge's sizes (one table, so that every model is
judged by the same network), the JSON round trip, and how a preset is sized to the data.

No Keras here: configs are read where TensorFlow is not loaded yet (command lines, pipeline
construction).
"""

import dataclasses
import json
from typing import Optional, Tuple

# The judge of the small presets, by preset name: appendix B.3's network, narrower (the paper
# presets keep the field defaults below). The cpu judge sees 32x32 frames whatever the model's
# size (AMC-GAN's cpu frames are 64x64): one judge for every family at cpu, at a quarter of the
# cost of a 64x64 one.
JUDGE_SIZES = {
    "cpu": dict(clf_filters=(16, 32, 64, 128), clf_fc_units=64, clf_batch_size=16,
                clf_learning_rate=1e-3, clf_frame_size=32),
    "test": dict(clf_filters=(4, 8, 8, 8), clf_fc_units=8, clf_batch_size=4),
}
# Sizes of the cpu / test presets when the data does not give them: the built-in gestures'.
DEFAULT_DATASET = "gestures"


@dataclasses.dataclass
class FamilyConfig:
    """Base of every family's config dataclass: the judge's fields and (de)serialisation.
    Subclasses add their fields (all with defaults) and override `validate`."""

    # 3D-CNN motion classifier (AMC-GAN appendix B.3), the evaluation's judge.
    clf_filters: Tuple[int, ...] = (64, 128, 256, 512)
    clf_strides: Tuple[int, ...] = (2, 2, 2, 4)
    clf_fc_units: int = 128
    clf_dropout: float = 0.5
    clf_learning_rate: float = 2e-4
    clf_batch_size: int = 32
    # H = W of the frames the judge sees; None: the model's frame_size. Larger videos are
    # area-downscaled to it (MotionClassifier).
    clf_frame_size: Optional[int] = None

    def validate(self):
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
        return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}

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


def judge_sizes(preset):
    """The judge's fields of a preset (empty: the paper's, the field defaults)."""
    return dict(JUDGE_SIZES.get(preset, {}))


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
