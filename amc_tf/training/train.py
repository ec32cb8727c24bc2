"""The training API the TFX Trainer module files and `amc-tf train` both call."""

import json
import math
import os

import keras
import numpy as np
import tensorflow as tf

from amc_tf.models import MotionClassifier, save_model
from amc_tf.models.amcgan import AMCGAN
from amc_tf.models.saving import CLASSIFIER_FILE, GENERATOR_FILE
from amc_tf.training import CLASSIFIER_METRICS_FILE
from amc_tf.training.data import make_classifier_dataset, make_model_dataset
from amc_tf.training.summaries import ScalarSummary, write_image

CHECKPOINT_FILE = "checkpoint.npz"
CONFIG_FILE = "config.json"


def _write_config(out_dir, config):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, CONFIG_FILE), "w") as f:
        f.write(config.to_json())


# ---------------------------------------------------------------------- classifier (B.3)
def train_classifier(config, train_pattern, eval_pattern, out_dir, steps, strategy=None,
                     verbose="auto"):
    """Trains the 3D-CNN motion classifier on real clips; saves `out_dir/classifier.keras`.

    Returns (classifier, {"accuracy", "loss"}) measured on the real eval clips.
    """
    strategy = strategy or tf.distribute.get_strategy()
    batch = config.clf_batch_size
    train_ds = make_classifier_dataset(train_pattern, config, batch)
    with strategy.scope():
        classifier = MotionClassifier(config, name="motion_classifier")
        classifier.build()
        classifier.compile(
            optimizer=keras.optimizers.Adam(config.clf_learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"])
    steps = max(1, int(steps))
    per_epoch = min(steps, 50)
    classifier.fit(train_ds, epochs=math.ceil(steps / per_epoch), steps_per_epoch=per_epoch,
                   verbose=verbose)
    eval_ds = make_classifier_dataset(eval_pattern, config, batch, shuffle=False, repeat=False,
                                      drop_remainder=False)
    loss, accuracy = classifier.evaluate(eval_ds, verbose=0)
    save_model(classifier, os.path.join(out_dir, CLASSIFIER_FILE))
    _write_config(out_dir, config)
    metrics = {"accuracy": float(accuracy), "loss": float(loss)}
    with open(os.path.join(out_dir, CLASSIFIER_METRICS_FILE), "w") as f:
        json.dump(metrics, f, indent=2)
    return classifier, metrics


# ---------------------------------------------------------------------- GAN checkpoints
def _state_variables(gan):
    """Every variable a resumed run needs: the three networks and both optimizers."""
    nets = [gan.generator, gan.appearance_discriminator, gan.motion_discriminator]
    return [v for net in nets for v in net.weights] + \
        list(gan.g_optimizer.variables) + list(gan.d_optimizer.variables)


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves networks + optimizer states atomically every epoch; `restore` resumes after a kill.

    Equivalent to keras.callbacks.BackupAndRestore for a GAN with two optimizers: the step
    counter lives in the optimizers, so a restored run continues at the saved step.
    """

    def __init__(self, directory, gan):
        super().__init__()
        self.directory = directory
        self.gan = gan
        self.path = os.path.join(directory, CHECKPOINT_FILE)

    def save(self):
        os.makedirs(self.directory, exist_ok=True)
        values = {f"v{i:05d}": np.asarray(v.numpy())
                  for i, v in enumerate(_state_variables(self.gan))}
        tmp = self.path + ".tmp.npz"
        np.savez(tmp, **values)
        os.replace(tmp, self.path)

    def restore(self):
        """Loads the latest checkpoint if any; returns the step it resumes at (0 if none)."""
        if not os.path.exists(self.path):
            return 0
        variables = _state_variables(self.gan)
        with np.load(self.path) as data:
            if len(data.files) != len(variables):
                raise ValueError(f"checkpoint {self.path} holds {len(data.files)} variables, "
                                 f"the model has {len(variables)}: another config?")
            for i, v in enumerate(variables):
                v.assign(data[f"v{i:05d}"])
        return int(self.gan.g_optimizer.iterations.numpy())

    def on_epoch_end(self, epoch, logs=None):
        self.save()


def _video_grid(appearance, generated):
    """[y_a | x̂_2 ... x̂_T] per row, rows stacked: (B*H, T*W, 3) uint8."""
    video = np.concatenate([appearance[:, None], generated], axis=1)
    b, t, h, w, c = video.shape
    grid = video.transpose(0, 2, 1, 3, 4).reshape(b * h, t * w, c)
    return np.clip((grid + 1.0) * 127.5, 0, 255).astype(np.uint8)


class VideoSummary(keras.callbacks.Callback):
    """Writes generated videos for a fixed eval batch (true and other classes) to TensorBoard."""

    def __init__(self, log_dir, gan, batch, seed=0):
        super().__init__()
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "videos"))
        self.gan = gan
        self.batch = {k: np.asarray(v) for k, v in batch.items()}
        rng = np.random.default_rng(seed)
        self.noise = rng.standard_normal((len(self.batch["motion_class"]),
                                          gan.config.noise_dim)).astype(np.float32)

    def on_epoch_end(self, epoch, logs=None):
        c = self.gan.config
        b = self.batch
        appearance = b["video"][:, 0]
        step = int(self.gan.g_optimizer.iterations.numpy())
        inputs = {"appearance": appearance, "motion_class": b["motion_class"],
                  "velocity": b["velocity"], "noise": self.noise}
        fake = self.gan.generator(inputs, training=False).numpy()
        shifted = dict(inputs, motion_class=(b["motion_class"] + 1) % c.num_classes,
                       velocity=np.roll(b["velocity"], 1, axis=0))
        other = self.gan.generator(shifted, training=False).numpy()
        with self.writer.as_default():
            write_image("real", _video_grid(appearance, b["video"][:, 1:]), step)
            write_image("generated", _video_grid(appearance, fake), step)
            write_image("generated_other_motion", _video_grid(appearance, other), step)
        self.writer.flush()


# ---------------------------------------------------------------------- GAN (Algorithm 1)
def train_gan(config, train_pattern, eval_pattern, out_dir, steps=None, strategy=None,
              resume=True, log_dir=None, verbose="auto", callbacks=()):
    """Trains AMC-GAN for `steps` steps in total (resuming from `out_dir` after a kill).

    Writes `out_dir/checkpoint.npz` every `config.steps_per_epoch` steps, TensorBoard scalars
    and generated-video summaries to `log_dir` (default `out_dir/logs`), and the trained
    generator to `out_dir/generator.keras`. Returns the AMCGAN.
    """
    strategy = strategy or tf.distribute.get_strategy()
    steps = int(steps or config.train_steps)
    log_dir = log_dir or os.path.join(out_dir, "logs")
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy(config.mixed_precision)
    train_ds = make_model_dataset(train_pattern, config, config.batch_size)
    with strategy.scope():
        gan = AMCGAN(config, name="amc_gan")
        gan.compile()
        gan.build_all()
    checkpoint = TrainingCheckpoint(out_dir, gan)
    start = checkpoint.restore() if resume else 0
    if start:
        print(f"[train_gan] resumed from step {start} ({checkpoint.path})", flush=True)
    _write_config(out_dir, config)

    per_epoch = max(1, min(config.steps_per_epoch, steps))
    epochs = math.ceil(steps / per_epoch)
    initial_epoch = min(start // per_epoch, epochs)
    cbs = [checkpoint,
           ScalarSummary(log_dir, lambda: int(gan.g_optimizer.iterations.numpy()))]
    if eval_pattern:
        sample = next(iter(make_model_dataset(eval_pattern, config, min(4, config.batch_size),
                                              shuffle=False, repeat=True)))
        cbs.append(VideoSummary(log_dir, gan, sample))
    cbs.extend(callbacks)
    # Reconstruction warm-up (config.reconstruction_warmup_steps, whole epochs), then Algorithm 1.
    warmup_epochs = min(config.reconstruction_warmup_steps // per_epoch, epochs)
    phases = [(True, initial_epoch, warmup_epochs),
              (False, max(initial_epoch, warmup_epochs), epochs)]
    for warmup, first, last in phases:
        if first < last:
            gan.reconstruction_warmup = warmup
            gan.make_train_function(force=True)
            gan.fit(train_ds, epochs=last, steps_per_epoch=per_epoch, initial_epoch=first,
                    callbacks=cbs, verbose=verbose)
    gan.reconstruction_warmup = False
    save_model(gan.generator, os.path.join(out_dir, GENERATOR_FILE))
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("float32")
    return gan


# ---------------------------------------------------------------------- velocity bank (§3.1)
def build_velocity_bank(file_pattern, config):
    """Velocities of the training clips with their classes: at inference y^v_m is sampled from
    the clips of the requested class (§3.1).

    Returns dict(velocity=float32 (N, T-1, 2k), motion_class=int32 (N,)).
    """
    ds = make_model_dataset(file_pattern, config, 64, shuffle=False, repeat=False,
                            drop_remainder=False)
    velocity, classes = [], []
    for batch in ds.map(lambda b: (b["velocity"], b["motion_class"])):
        velocity.append(batch[0].numpy())
        classes.append(batch[1].numpy())
    return {"velocity": np.concatenate(velocity).astype(np.float32),
            "motion_class": np.concatenate(classes).astype(np.int32)}
