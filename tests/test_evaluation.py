"""The evaluation protocol for families with and without an appearance or velocities: which
outputs exist (SSIM / PSNR not applicable without y_a), which velocities each generation gets."""

import numpy as np
import pytest
import tensorflow as tf

import fixtures
from amc_tf import evaluation
from amc_tf.data import features
from amc_tf.metrics import suite
from amc_tf.models import get_family
from amc_tf.models.classifier import build_classifier

NUM_CLASSES, NUM_KEYPOINTS = 3, 9


class RecordingFamily:
    """A stand-in family that records the conditions it generates from; its video is a
    constant frame whose value follows the velocity it got (0 without)."""

    def __init__(self, uses_appearance, uses_velocity):
        self.name = "recording"
        self.uses_appearance = uses_appearance
        self.uses_velocity = uses_velocity
        self.calls = []

    def noise_shape(self, config):
        return (2,)

    def generate(self, generator, conditions, config, training=False):
        self.calls.append(conditions)
        batch = tf.shape(conditions["motion_class"])[0]
        level = tf.zeros([batch])
        if "velocity" in conditions:
            level = tf.reduce_mean(conditions["velocity"], axis=[1, 2])
        shape = [config.num_frames, config.frame_size, config.frame_size, 3]
        return tf.tanh(level)[:, None, None, None, None] * tf.ones([batch] + shape)


@pytest.fixture(scope="module")
def clips_and_judge(tmp_path_factory):
    from amc_tf.training import train
    config = get_family("amc-gan").config("test", num_classes=NUM_CLASSES,
                                          num_keypoints=NUM_KEYPOINTS)
    root = tmp_path_factory.mktemp("evaluation")
    pattern = fixtures.write_clips(str(root), 6, NUM_CLASSES, NUM_KEYPOINTS, seed=2)
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern),
                                                             compression_type="GZIP")]
    clips = features.parse_examples(tf.constant(serialized), NUM_KEYPOINTS)
    classifier = build_classifier(config)
    classifier.build()
    return dict(config=config, clips=clips, classifier=classifier,
                bank=train.build_velocity_bank(pattern, config))


def test_family_without_appearance_has_no_reconstruction_metrics(clips_and_judge):
    c = clips_and_judge
    family = RecordingFamily(uses_appearance=False, uses_velocity=False)
    out = evaluation.evaluation_outputs(family, None, c["config"], c["clips"], c["classifier"])
    assert suite.SSIM not in out and suite.PSNR not in out
    assert len(family.calls) == 1 and "appearance" not in family.calls[0]
    metrics = suite.applicable_metrics(out)
    assert suite.SSIM_METRIC not in metrics and suite.ACCURACY_RATIO in metrics


def test_family_without_velocities_reconstructs_from_its_one_generation(clips_and_judge):
    c = clips_and_judge
    family = RecordingFamily(uses_appearance=True, uses_velocity=False)
    out = evaluation.evaluation_outputs(family, None, c["config"], c["clips"], c["classifier"])
    assert len(family.calls) == 1 and "velocity" not in family.calls[0]
    assert out[suite.SSIM].shape == (6,) and out[suite.PSNR].shape == (6,)


def test_family_with_velocities_samples_then_reconstructs_with_its_own(clips_and_judge):
    c = clips_and_judge
    family = RecordingFamily(uses_appearance=True, uses_velocity=True)
    evaluation.evaluation_outputs(family, None, c["config"], c["clips"], c["classifier"],
                                  velocity_bank=c["bank"])
    sampled, own = family.calls
    from amc_tf import inputs
    expected_own = inputs.clip_to_model_inputs(c["clips"], c["config"])["velocity"]
    np.testing.assert_allclose(own["velocity"].numpy(), expected_own.numpy())
    # The sampled velocities are bank rows of each clip's class, drawn by its clip_id's seed.
    seeds = evaluation.clip_seeds(c["clips"][features.CLIP_ID])
    np.testing.assert_allclose(
        sampled["velocity"].numpy(),
        c["bank"].sample(c["clips"][features.MOTION_CLASS], seeds).numpy())
    np.testing.assert_allclose(sampled["noise"].numpy(), own["noise"].numpy())   # same z


@pytest.mark.parametrize("uses_appearance, uses_velocity", [(False, False), (True, False),
                                                            (True, True)])
def test_output_names_are_what_the_protocol_returns(clips_and_judge, uses_appearance,
                                                    uses_velocity):
    c = clips_and_judge
    family = RecordingFamily(uses_appearance, uses_velocity)
    out = evaluation.evaluation_outputs(family, None, c["config"], c["clips"], c["classifier"],
                                        velocity_bank=c["bank"])
    assert set(out) == evaluation.output_names(uses_appearance, keypoint_judge=False)


def test_clip_seeds_depend_on_the_clip_only():
    a = evaluation.clip_seeds(tf.constant(["x#0", "y#1", "z"])).numpy()
    b = evaluation.clip_seeds(tf.constant(["z", "x#0"])).numpy()
    assert a[2] == b[0] and a[0] == b[1] and len(set(a)) == 3
    assert (a >= 0).all()

