"""§4.1's protocol outside TFX: a classifier trained on real clips judges generated videos."""

import numpy as np
import tensorflow as tf

from amc_tf.inference import sample_velocity
from amc_tf.training.data import make_model_dataset


def generated_video_accuracy(generator, classifier, eval_pattern, config, velocity_bank,
                             seed=0, batch_size=16):
    """Accuracy of `classifier` on real eval clips and on videos generated from each clip's
    first frame and class, with velocities sampled from training clips of that class (§3.1).

    Returns dict(real_accuracy, generated_accuracy, ratio, clips).
    """
    rng = np.random.default_rng(seed)
    ds = make_model_dataset(eval_pattern, config, batch_size, shuffle=False, repeat=False,
                            drop_remainder=False)
    real_hits = fake_hits = total = 0
    for batch in ds:
        video, labels = batch["video"], batch["motion_class"].numpy()
        n = len(labels)
        velocity = sample_velocity(velocity_bank, labels, rng)
        noise = rng.standard_normal((n, config.noise_dim)).astype(np.float32)
        frames = generator({"appearance": video[:, 0], "motion_class": tf.constant(labels),
                            "velocity": tf.constant(velocity), "noise": tf.constant(noise)},
                           training=False)
        generated = tf.concat([video[:, :1], frames], axis=1)
        real_hits += int((np.argmax(classifier(video, training=False), -1) == labels).sum())
        fake_hits += int((np.argmax(classifier(generated, training=False), -1) == labels).sum())
        total += n
    real, fake = real_hits / max(total, 1), fake_hits / max(total, 1)
    return {"real_accuracy": real, "generated_accuracy": fake,
            "ratio": fake / real if real else None, "clips": total}
