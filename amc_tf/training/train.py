"""The training API the TFX Trainer module files and `amc-tf train` both call, for every model
family (amc_tf.models.family). Every file goes through tf.io.gfile: out_dir may be gs:// or ram://.
"""

import contextlib
import math
import posixpath

import keras
import numpy as np
import tensorflow as tf

from amc_tf.inference import VelocityBank
from amc_tf.training import distribute
from amc_tf.models.classifier import build_classifier
from amc_tf.models.saving import CLASSIFIER_FILE, save_model
from amc_tf.training.data import (JUDGE_CACHE_BYTES, TRAIN_PART, VALIDATION_PART, holdout,
                                  make_classifier_dataset, make_model_dataset)
from amc_tf.training.files import (CHECKPOINT_DIR, CLASSIFIER_METRICS_FILE,
                                   write_config, write_json)
from amc_tf.training.guards import (EarlierRunExists, StopOnNonFiniteLoss, TrainingDiverged,
                                    UnusableCheckpoint, check_finite_weights,
                                    non_finite_weights)
from amc_tf.training.summaries import ScalarSummary, VideoSummary


def first_batch(file_pattern, config, batch_size, record_filter=None):
    """One model batch of `file_pattern` (of the records `record_filter` keeps), or None when it
    matches no file or holds no such clip."""
    if not file_pattern or not tf.io.gfile.glob(file_pattern):
        return None
    ds = make_model_dataset(file_pattern, config, batch_size, shuffle=False, repeat=False,
                            drop_remainder=False, record_filter=record_filter)
    for batch in ds.take(1):
        return batch
    return None


def _no_eval(eval_pattern):
    return f"the eval split ({eval_pattern}) holds no clip" if eval_pattern else \
        "no eval split given"


# ---------------------------------------------------------------------- classifier (B.3)
# §4.1: the classifiers are validated on ~10 % of the training clips; the best epoch is kept.
CLASSIFIER_VALIDATION_FRACTION = 0.1


class KeepBestWeights(keras.callbacks.Callback):
    """Restores, when training ends, the weights of the epoch with the best `monitor`; among
    epochs that tie (a small validation split saturates), the one of the lowest `tie_break`
    (the validation loss: the most confident right answers), then the later one."""

    def __init__(self, monitor="val_accuracy", tie_break="val_loss"):
        super().__init__()
        self.monitor, self.tie_break = monitor, tie_break
        self.best_epoch = None
        self._key = None      # (monitor, -tie_break) of the kept epoch
        self._weights = None

    @property
    def best(self):
        """The kept epoch's `monitor` (None before any epoch reported it)."""
        return self._key[0] if self._key else None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            return
        loss = logs.get(self.tie_break)
        key = (float(value), -float(loss) if loss is not None else 0.0)
        if self._key is None or key >= self._key:
            self._key, self.best_epoch = key, epoch
            self._weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        if self._weights is not None:
            self.model.set_weights(self._weights)


def train_classifier(config, train_pattern, eval_pattern, out_dir, steps, strategy=None,
                     verbose="auto"):
    """Trains the 3D-CNN motion classifier on real clips; saves `out_dir/classifier.keras`.

    ~10 % of the training clips (whole source clips, `data.holdout`) validate every epoch and the
    best epoch's weights are kept (§4.1); the learning rate decays along a cosine; the training
    clips are parsed once and kept in memory when they fit `data.JUDGE_CACHE_BYTES`. Returns
    (classifier, {"accuracy", "loss", "eval_clips", "validation_accuracy", "best_step"}) with
    accuracy and loss on the real eval clips (None when the eval split is empty: said on the
    console).

    Under MultiWorkerMirroredStrategy every worker calls this with the same arguments (fit and
    evaluate run on all of them, each on its share of the global batch); only the chief writes.
    """
    ema = float(getattr(config, "clf_weight_ema", 0.0))     # in [0, 1): FamilyConfig.validate
    strategy = strategy or tf.distribute.get_strategy()
    multi_worker = distribute.is_multi_worker(strategy)
    # Every worker shards the same sequence of batches (DATA sharding needs one shuffle seed).
    shard = distribute.shard_by_data if multi_worker else (lambda ds: ds)
    seed = _SHUFFLE_SEED if multi_worker else None
    batch = config.clf_batch_size
    steps = max(1, int(steps))
    per_epoch = min(steps, 50)
    epochs = math.ceil(steps / per_epoch)
    validation = holdout(VALIDATION_PART, CLASSIFIER_VALIDATION_FRACTION)
    validate = first_batch(train_pattern, config, 1, validation) is not None
    train_filter = holdout(TRAIN_PART, CLASSIFIER_VALIDATION_FRACTION) if validate else None
    if first_batch(train_pattern, config, 1, train_filter) is None:
        raise ValueError(f"no training clip in {train_pattern}: cannot train the classifier")
    # Appearance jitter: the judge must read motion, not the training subjects' clothes.
    train_ds = shard(make_classifier_dataset(train_pattern, config, batch, seed=seed,
                                             record_filter=train_filter, augment=True,
                                             cache_bytes=JUDGE_CACHE_BYTES))
    with strategy.scope():
        classifier = build_classifier(config)
        classifier.build()
        schedule = keras.optimizers.schedules.CosineDecay(config.clf_learning_rate,
                                                          epochs * per_epoch, alpha=0.05)
        classifier.compile(
            optimizer=keras.optimizers.Adam(schedule, use_ema=bool(ema),
                                            ema_momentum=ema or 0.99),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"])
    # With the weights' average, validation and the kept epoch see the averaged weights (the
    # swap comes before KeepBestWeights reads them); without validation fit ends on them.
    callbacks = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema else []
    fit_args = {}
    keep_best = KeepBestWeights() if validate else None
    if validate:
        callbacks.append(keep_best)
        fit_args["validation_data"] = shard(make_classifier_dataset(
            train_pattern, config, batch, shuffle=False, repeat=False, drop_remainder=False,
            record_filter=validation).cache())
    else:
        print(f"[train] too few training clips in {train_pattern} for a validation split: the "
              f"classifier keeps its last epoch", flush=True)
    callbacks.append(StopOnNonFiniteLoss("the motion classifier", per_epoch))
    classifier.fit(train_ds, epochs=epochs, steps_per_epoch=per_epoch, callbacks=callbacks,
                   verbose=verbose, **fit_args)
    metrics = {"accuracy": None, "loss": None, "eval_clips": 0,
               "validation_accuracy": keep_best.best if validate else None,
               "best_step": (keep_best.best_epoch + 1) * per_epoch if validate else steps}
    if first_batch(eval_pattern, config, 1) is None:
        print(f"[train] {_no_eval(eval_pattern)}: the classifier's real-clip accuracy is not "
              f"measured", flush=True)
    else:
        eval_ds = make_classifier_dataset(eval_pattern, config, batch, shuffle=False,
                                          repeat=False, drop_remainder=False)
        loss, accuracy = classifier.evaluate(shard(eval_ds), verbose=0)
        clips = int(sum(int(tf.shape(y)[0]) for _, y in eval_ds))
        metrics.update(accuracy=float(accuracy), loss=float(loss), eval_clips=clips)
    check_finite_weights(classifier, "the trained motion classifier")
    if distribute.is_chief(strategy):
        save_model(classifier, posixpath.join(out_dir, CLASSIFIER_FILE))
        write_config(out_dir, config)
        write_json(posixpath.join(out_dir, CLASSIFIER_METRICS_FILE), metrics)
    return classifier, metrics


# ---------------------------------------------------------------------- all judges
def train_judges(config, train_pattern, eval_pattern, out_dir, classifier_steps, num_landmarks,
                 strategy=None, keypoint_judge=True, verbose="auto"):
    """The evaluation's judges, trained on real clips and saved in `out_dir`: the B.3 classifier
    and (keypoint_judge) B.4's keypoint detector + heatmap classifier, whose size comes from the
    preset (`keypoint_judge.keypoint_judge_config(config.name)`). Returns what `load_judges`
    reads back: (B.3 classifier, KeypointJudge or None, flat judge_metrics).

    Under MultiWorkerMirroredStrategy the B.3 classifier trains on every worker; B.4's keypoint
    judge (not distributed) trains on the chief alone, and another worker returns
    (its classifier, None, {}) as soon as the classifier is trained: the chief writes out_dir.
    """
    from amc_tf.evaluation import KeypointJudge
    motion_classifier, _ = train_classifier(config, train_pattern, eval_pattern, out_dir,
                                            classifier_steps, strategy=strategy, verbose=verbose)
    if not distribute.is_chief(strategy or tf.distribute.get_strategy()):
        return motion_classifier, None, {}
    keypoint = None
    if keypoint_judge:
        from amc_tf.training import keypoint_judge as judge
        judge_config = judge.keypoint_judge_config(config.name)
        detector, detector_metrics = judge.train_keypoint_detector(
            judge_config, train_pattern, eval_pattern, config.num_keypoints, num_landmarks,
            verbose=verbose)
        classifier, classifier_metrics = judge.train_keypoint_classifier(
            judge_config, detector, config, train_pattern, eval_pattern, config.num_keypoints,
            num_landmarks, verbose=verbose)
        judge.save_keypoint_judge(out_dir, detector, classifier,
                                  {"detector": detector_metrics,
                                   "classifier": classifier_metrics})
        keypoint = KeypointJudge(detector, classifier)
    return motion_classifier, keypoint, read_judge_metrics(out_dir)


def read_judge_metrics(out_dir):
    """The judges' own figures on real clips, flat (what the export's metadata and every
    evaluation table carry): the B.3 classifier's eval and validation accuracy, and where a
    keypoint judge was trained the detector's landmark error and B.4's real-clip accuracy."""
    from amc_tf.training.files import read_json
    from amc_tf.training import keypoint_judge as judge
    clf = read_json(posixpath.join(out_dir, CLASSIFIER_METRICS_FILE))
    out = {"classifier_real_accuracy": clf.get("accuracy"),
           "classifier_validation_accuracy": clf.get("validation_accuracy")}
    if tf.io.gfile.exists(posixpath.join(out_dir, judge.METRICS_FILE)):
        kp = judge.load_keypoint_judge_metrics(out_dir)
        out.update(keypoint_detector_error_px=kp["detector"].get("mean_error_px"),
                   keypoint_detector_pck_3px=kp["detector"].get("pck_3px"),
                   keypoint_classifier_real_accuracy=kp["classifier"].get("accuracy"))
    return out


def load_judges(out_dir):
    """(B.3 classifier, KeypointJudge or None, judge_metrics) saved by `train_judges`."""
    from amc_tf.evaluation import KeypointJudge
    from amc_tf.models.saving import load_classifier
    from amc_tf.training import keypoint_judge as judge
    keypoint = None
    if tf.io.gfile.exists(posixpath.join(out_dir, judge.DETECTOR_FILE)):
        keypoint = KeypointJudge(*judge.load_keypoint_judge(out_dir))
    return load_classifier(out_dir), keypoint, read_judge_metrics(out_dir)


# ---------------------------------------------------------------------- checkpoints
class TrainingCheckpoint(keras.callbacks.Callback):
    """tf.train.Checkpoint of the model (its networks and optimizers, keyed by object) and the
    global step, saved every epoch by a CheckpointManager; `restore` resumes after a kill.

    Only finite weights are saved. On resume the newest checkpoint that restores completely and
    holds finite weights is used; the ones skipped are named on the console (a kill while
    writing, a disk error), and if none can be used the error names each and the way out.

    Multi-worker (`write_directory` not `directory`: a non-chief worker): the worker saves with
    the others (a save reads synchronized variables through collectives) but into its own
    `write_directory`; it restores from `directory`, the chief's.
    """

    def __init__(self, directory, model, max_to_keep=2, write_directory=None):
        super().__init__()
        self.directory = directory
        self.write_directory = write_directory or directory
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.checkpoint = tf.train.Checkpoint(model=model, step=self.step)
        self.restored_from = None
        if self.write_directory != directory:     # a non-chief worker: never touches the chief's
            self.manager = tf.train.CheckpointManager(self.checkpoint, self.write_directory,
                                                      max_to_keep=max_to_keep)
            return
        try:
            self.manager = tf.train.CheckpointManager(self.checkpoint, directory,
                                                      max_to_keep=max_to_keep)
        except Exception as e:  # noqa: BLE001  an unreadable index: the ckpt-N files still serve
            index = posixpath.join(directory, "checkpoint")
            aside = index + ".unreadable"
            print(f"[train] the checkpoint index {index} is unreadable ({type(e).__name__}: "
                  f"{e}); moved to {aside}, looking for ckpt-N files instead", flush=True)
            tf.io.gfile.rename(index, aside, overwrite=True)
            self.manager = tf.train.CheckpointManager(self.checkpoint, directory,
                                                      max_to_keep=max_to_keep)

    def _candidates(self):
        """Checkpoint prefixes, newest first: the index's, which names the run's own; only where
        it lists none (a crash while it was rewritten, or set aside as unreadable) the ckpt-N
        files on disk, by number. A ckpt-N the index does not list is not this run's."""
        listed = list(self._listed())
        if listed:
            return listed[::-1]
        return _checkpoint_files(self.directory)

    def _listed(self):
        """The checkpoints the chief's index lists, oldest first, its latest last (read from
        the file: a CheckpointManager lists only those the index gives timestamps for)."""
        try:
            state = tf.train.get_checkpoint_state(self.directory)
        except Exception:  # noqa: BLE001  unreadable: the chief sets it aside; ckpt-N still serve
            return []
        if not state:
            return []
        paths = [p for p in state.all_model_checkpoint_paths if p != state.model_checkpoint_path]
        return paths + ([state.model_checkpoint_path] if state.model_checkpoint_path else [])

    def restore(self):
        """Restores the newest usable checkpoint if any; returns the step it resumes at (0 if
        there is none)."""
        candidates = self._candidates()
        failures = []
        for path in candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except Exception as e:  # noqa: BLE001  any reader error: named with its file
                failures.append(f"{path}: {type(e).__name__}: {_first_line(e)}")
                continue
            bad = non_finite_weights(self.checkpoint.model.variables)
            if bad:
                failures.append(f"{path}: {len(bad)} variable(s) hold NaN or Inf (e.g. {bad[0]})")
                continue
            for failure in failures:
                print(f"[train] skipped the checkpoint {failure}", flush=True)
            self.restored_from = path
            return int(self.step.numpy())
        if not candidates:
            return 0
        raise UnusableCheckpoint(
            f"cannot restore the checkpoint {'; nor '.join(failures)}. It is corrupt, holds a "
            f"diverged model or was written by another preset or model; remove "
            f"{self.directory} or start again in its place (--no-resume --overwrite)")

    def last_good(self):
        """Where the run would resume, for error messages."""
        if self.write_directory == self.directory:
            path = self.manager.latest_checkpoint
        else:
            try:
                path = tf.train.latest_checkpoint(self.directory)
            except Exception:  # noqa: BLE001  an unreadable index: for a message only
                path = None
        return (f"the last good checkpoint is {path} (the same command resumes from it)" if path
                else f"no checkpoint was saved yet in {self.directory}")

    def on_train_batch_end(self, batch, logs=None):
        self.step.assign_add(1)   # counted, not derived from the epoch: a run may stop mid-epoch

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.step.numpy())
        bad = non_finite_weights(self.model.variables)
        if bad:
            raise TrainingDiverged(f"the model holds NaN or Inf weights at step {step} (e.g. "
                                   f"{bad[0]}): checkpoint not saved; {self.last_good()}")
        self.manager.save(checkpoint_number=step)


def _checkpoint_files(directory):
    """The ckpt-N prefixes on disk in `directory`, newest (highest N) first."""
    def number(prefix):
        n = prefix.rsplit("-", 1)[-1]
        return int(n) if n.isdigit() else -1
    found = [index[:-len(".index")] for index in
             tf.io.gfile.glob(posixpath.join(directory, "ckpt-*.index"))]
    return sorted(found, key=number, reverse=True)


def earlier_checkpoint(checkpoint_dir):
    """The newest checkpoint of a run in `checkpoint_dir` (its index's, else a ckpt-N file on
    disk), or None: cheap, no model is built."""
    try:
        path = tf.train.latest_checkpoint(checkpoint_dir)
    except Exception:  # noqa: BLE001  an unreadable index: the ckpt-N files still say it
        path = None
    if path:
        return path
    return next(iter(_checkpoint_files(checkpoint_dir)), None)


def check_no_earlier_run(checkpoint_dir, overwrite):
    """Raises EarlierRunExists where `checkpoint_dir` holds a run and `overwrite` is off (a
    run that does not resume would otherwise put its checkpoints beside another run's)."""
    earlier = earlier_checkpoint(checkpoint_dir)
    if earlier and not overwrite:
        raise EarlierRunExists(
            f"{checkpoint_dir} holds the checkpoints of an earlier run (newest {earlier}): "
            f"resume it (leave out --no-resume), replace it (--no-resume --overwrite) or "
            f"choose another --out")
    return earlier


def _start_clean(checkpoint_dir, overwrite, chief):
    """A run from step 0 in `checkpoint_dir`: refuses an earlier run's checkpoints there unless
    `overwrite`; then the chief removes them whole before the first new one is written."""
    earlier = check_no_earlier_run(checkpoint_dir, overwrite)
    if earlier and chief:
        print(f"[train] removing the earlier run's checkpoints in {checkpoint_dir} "
              f"(newest {earlier}; --overwrite)", flush=True)
        tf.io.gfile.rmtree(checkpoint_dir)


def _first_line(e):
    lines = [line for line in str(e).splitlines() if line.strip()]
    return lines[0] if lines else ""


# ---------------------------------------------------------------------- a model family
def train_model(family, config, train_pattern, eval_pattern, out_dir, steps=None, strategy=None,
                resume=True, log_dir=None, verbose="auto", callbacks=(), overwrite=False):
    """Trains `family` for `steps` steps in total (resuming from `out_dir` after a kill).

    resume=False starts from step 0; where `out_dir` holds an earlier run's checkpoints that is
    an EarlierRunExists error unless overwrite=True, which removes them (the whole checkpoint
    directory) before the first new one is written: `out_dir` never holds two runs' checkpoints.

    Writes `out_dir/checkpoints/` every `config.steps_per_epoch` steps, TensorBoard scalars and
    generated videos of the eval split to `log_dir` (default `out_dir/logs`; without eval clips
    the videos are skipped and the console says so), and the generator to
    `out_dir/<family.generator_file()>`. Returns the trained keras.Model.

    Under MultiWorkerMirroredStrategy (`distribute.choose_strategy`) every worker calls this
    with the same arguments: the global batch (config.batch_size) is split across the workers,
    each worker restores from the chief's checkpoints, and only the chief writes to out_dir and
    log_dir (the others' checkpoint copies go to a temporary directory, removed at the end).
    """
    strategy = strategy or tf.distribute.get_strategy()
    multi_worker = distribute.is_multi_worker(strategy)
    chief = distribute.is_chief(strategy)
    steps = int(steps or config.train_steps)
    log_dir = log_dir or posixpath.join(out_dir, "logs")
    per_epoch = max(1, min(config.steps_per_epoch, steps))
    epochs = math.ceil(steps / per_epoch)
    phases = _phase_epochs(family.training_phases(config), per_epoch, epochs)
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy(config.mixed_precision)
    checkpoint_dir = posixpath.join(out_dir, CHECKPOINT_DIR)
    write_dir = distribute.worker_write_dir(checkpoint_dir, strategy)
    try:
        if not multi_worker:
            train_ds = make_model_dataset(train_pattern, config, config.batch_size)
        with strategy.scope():
            model = family.build(config)
        if not resume:
            _start_clean(checkpoint_dir, overwrite, chief)
        checkpoint = TrainingCheckpoint(checkpoint_dir, model, write_directory=write_dir)
        start = checkpoint.restore() if resume else 0
        if start:
            print(f"[train] resumed from step {start} ({checkpoint.restored_from})", flush=True)
        if multi_worker:
            # Every worker reads the same sequence of global batches (the same shuffle seed, a
            # new one after a resume) and keeps its share of each.
            train_ds = distribute.shard_by_data(make_model_dataset(
                train_pattern, config, config.batch_size, seed=_SHUFFLE_SEED + start))
        step_fn = lambda: int(checkpoint.step.numpy())
        # The NaN guard runs first: a diverged step never reaches a summary or a checkpoint.
        cbs = [StopOnNonFiniteLoss(family.name, per_epoch, checkpoint.last_good), checkpoint]
        if chief:
            write_config(out_dir, config)
            cbs.append(ScalarSummary(log_dir, step_fn))
            sample = first_batch(eval_pattern, config, min(4, config.batch_size))
            if sample is None:
                print(f"[train] {_no_eval(eval_pattern)}: training without the generated-video "
                      f"summaries", flush=True)
            else:
                cbs.append(VideoSummary(log_dir, family, model, config, sample, step_fn))
        else:
            print(f"[train] {distribute.task_label(strategy)}: the chief writes the checkpoints, "
                  f"summaries and generator to {out_dir}", flush=True)
        cbs.extend(callbacks)
        initial_epoch = min(start // per_epoch, epochs)
        # A run stopped mid-epoch (a time budget) saved a partial epoch: it is trained again.
        checkpoint.step.assign(initial_epoch * per_epoch)
        for phase, first, last in phases:
            first = max(first, initial_epoch)
            if first < last:
                family.enter_phase(model, phase)
                model.make_train_function(force=True)
                with graph_optimizer_options(family):
                    model.fit(train_ds, epochs=last, steps_per_epoch=per_epoch,
                              initial_epoch=first, callbacks=cbs, verbose=verbose)
                if model.stop_training:   # a callback ended the run (e.g. a time budget)
                    break
        generator = family.generator(model)
        check_finite_weights(generator, f"the trained {family.name} generator")
        if chief:
            save_model(generator, posixpath.join(out_dir, family.generator_file()))
    finally:
        distribute.remove_worker_dir(write_dir, checkpoint_dir)
        if config.mixed_precision:
            keras.mixed_precision.set_global_policy("float32")
    return model


@contextlib.contextmanager
def graph_optimizer_options(family):
    """Applies `family.graph_optimizer_options` to the functions first run inside (Grappler
    optimizes a tf.function when it is first called) and restores the process's options after:
    tf.config.optimizer is process-wide."""
    options = dict(family.graph_optimizer_options)
    if not options:
        yield
        return
    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options(options)
    try:
        yield
    finally:
        # A key that was not set before is on by default (every Grappler optimizer is).
        tf.config.optimizer.set_experimental_options(
            {key: before.get(key, True) for key in options})


# The shuffle seed every worker of a multi-worker run shares (plus the step it resumes at).
_SHUFFLE_SEED = 18


def _phase_epochs(phases, per_epoch, epochs):
    """[(phase, steps)] -> [(phase, first_epoch, end_epoch)]; phases change at whole epochs so
    a checkpoint (saved per epoch) always lies inside one phase."""
    out, first = [], 0
    for phase, steps in phases:
        if steps is not None and steps % per_epoch:
            raise ValueError(f"phase {phase!r} has {steps} steps, not a multiple of "
                             f"steps_per_epoch ({per_epoch})")
        last = epochs if steps is None else min(first + steps // per_epoch, epochs)
        out.append((phase, first, last))
        first = last
    return out


# ---------------------------------------------------------------------- velocity bank (§3.1)
def build_velocity_bank(file_pattern, config):
    """The VelocityBank of the training clips (model velocities, `inputs.clip_velocity`): at
    inference y^v_m is drawn from the clips of the requested class (§3.1)."""
    ds = make_model_dataset(file_pattern, config, 64, shuffle=False, repeat=False,
                            drop_remainder=False)
    velocity, classes = [], []
    for batch in ds:
        velocity.append(batch["velocity"].numpy())
        classes.append(batch["motion_class"].numpy())
    if not velocity:
        raise ValueError(f"no training clip in {file_pattern}: no velocities to sample from")
    return VelocityBank(np.concatenate(velocity), np.concatenate(classes), config.num_classes)

