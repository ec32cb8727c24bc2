"""The evaluation protocol (§3.1, §4.1) of every model family, on real eval clips.

For each clip (parsed by `features.parse_examples`), with one seed per clip derived from its
`clip_id` (the same video whatever batch the clip is in, in TFMA or `amc-tf evaluate`):

  1. generate from its first frame (families with y_a) and its class, y^v_m drawn from the
     training clips of that class (families with velocities, §3.1) and z from the seed: the
     video the classifiers judge (accuracy, IS, H, classifier FID, B.4 keypoint accuracy);
  2. generate again with the clip's own velocities (same z): what SSIM / PSNR compare with the
     real clip, frames 2..T at the clips' 64x64 (families without y_a skip this; families
     without velocities use generation 1, which already is "the protocol minus velocity");
  3. run the same judges on the real clip (real-clip accuracy, features, B.4).

The classifiers apply their own input rules (B.3 / B.4: drop the first T/8 frames). Outputs are
named by `amc_tf.metrics.suite`.
"""

import tensorflow as tf

from amc_tf import inference, inputs
from amc_tf.data import features
from amc_tf.metrics import reconstruction, suite


def clip_seeds(clip_id):
    """int64 seed of each clip, a hash of its clip_id: reproducible and batch-independent."""
    return tf.strings.to_hash_bucket_fast(clip_id, 2 ** 62)


class KeypointJudge(tf.Module):
    """B.4's judge: the keypoint detector and the heatmap classifier, run as one."""

    def __init__(self, detector, classifier, name="keypoint_judge"):
        super().__init__(name=name)
        self.detector = detector
        self.classifier = classifier

    def __call__(self, video):
        from amc_tf.models.keypoint_classifier import keypoint_motion_logits
        return tf.cast(keypoint_motion_logits(self.detector, self.classifier, video), tf.float32)


def output_names(uses_appearance, keypoint_judge):
    """The outputs `evaluation_outputs` returns for a family with / without an appearance and
    with / without a keypoint judge (what the Evaluator's metrics can read)."""
    names = {suite.PROBABILITIES, suite.PREDICTED_CLASS, suite.REAL_PROBABILITIES,
             suite.GENERATED_FEATURES, suite.REAL_FEATURES}
    if uses_appearance:
        names |= {suite.SSIM, suite.PSNR}
    if keypoint_judge:
        names |= {suite.KEYPOINT_PROBABILITIES, suite.REAL_KEYPOINT_PROBABILITIES}
    return names


def _probabilities(logits):
    return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)


def evaluation_outputs(family, generator, config, clips, classifier, velocity_bank=None,
                       keypoint_judge=None):
    """The suite's per-clip outputs (dict of (B, ...) tensors) for parsed eval clips.

    Args:
      classifier: the frozen B.3 `MotionClassifier` of this config's T and frame size.
      velocity_bank: `inference.VelocityBank` of the training clips (families with velocities).
      keypoint_judge: optional `KeypointJudge` (B.4); without it the keypoint outputs are absent.
    """
    batch = inputs.clip_to_model_inputs(clips, config)
    clip = inputs.clip_conditions(batch, family)
    seed = clip_seeds(clips[features.CLIP_ID])
    sampled = inference.request_conditions(
        family, config, clip["motion_class"], seed, appearance=clip.get("appearance"),
        velocity_bank=velocity_bank)
    generated = family.generate(generator, sampled, config)
    real = batch["video"]
    out = {
        suite.PROBABILITIES: _probabilities(classifier(generated, training=False)),
        suite.REAL_PROBABILITIES: _probabilities(classifier(real, training=False)),
        suite.GENERATED_FEATURES: tf.cast(classifier.penultimate(generated), tf.float32),
        suite.REAL_FEATURES: tf.cast(classifier.penultimate(real), tf.float32),
    }
    out[suite.PREDICTED_CLASS] = tf.argmax(out[suite.PROBABILITIES], axis=-1,
                                           output_type=tf.int64)
    if family.uses_appearance:
        reconstructed = generated
        if family.uses_velocity:
            own = dict(sampled, velocity=clip["velocity"])
            reconstructed = family.generate(generator, own, config)
        real_uint8 = clips[features.VIDEO][:, ::config.frame_stride]
        generated_uint8 = inputs.video_to_clip_size(reconstructed)
        out[suite.SSIM] = reconstruction.video_ssim(real_uint8, generated_uint8)
        out[suite.PSNR] = reconstruction.video_psnr(real_uint8, generated_uint8)
    if keypoint_judge is not None:
        out[suite.KEYPOINT_PROBABILITIES] = _probabilities(keypoint_judge(generated))
        out[suite.REAL_KEYPOINT_PROBABILITIES] = _probabilities(keypoint_judge(real))
    return out
