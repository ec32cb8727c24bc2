"""§4.1's protocol outside TFX: a classifier trained on real clips judges generated videos."""

import numpy as np
import tensorflow as tf

from amc_tf import inference, inputs
from amc_tf.training.data import make_model_dataset


def generated_video_accuracy(family, generator, classifier, eval_pattern, config, velocity_bank,
                             seed=0, batch_size=16):
    """Accuracy of `classifier` on the real eval clips and on the videos generated from each
    clip's first frame and class, velocities drawn from training clips of that class (§3.1);
    clip i uses seed `seed + i` for z and the draw, so the figure is reproducible.

    Returns dict(real_accuracy, generated_accuracy, ratio, clips).
    """
    ds = make_model_dataset(eval_pattern, config, batch_size, shuffle=False, repeat=False,
                            drop_remainder=False)
    real_hits = fake_hits = total = 0
    for batch in ds:
        labels = batch["motion_class"].numpy()
        n = len(labels)
        seeds = tf.constant(seed + total + np.arange(n), tf.int64)
        clip = inputs.clip_conditions(batch, family)
        conditions = inference.request_conditions(
            family, config, clip["motion_class"], seeds, appearance=clip.get("appearance"),
            velocity_bank=velocity_bank)
        fake = inference.generate_then_classify(family, generator, classifier, conditions, config)
        real = classifier(batch["video"], training=False)
        real_hits += int((np.argmax(real, -1) == labels).sum())
        fake_hits += int((np.argmax(fake, -1) == labels).sum())
        total += n
    if not total:
        raise ValueError(f"no eval clip in {eval_pattern}: nothing to evaluate")
    real, fake = real_hits / total, fake_hits / total
    return {"real_accuracy": real, "generated_accuracy": fake,
            "ratio": fake / real if real else None, "clips": total}
