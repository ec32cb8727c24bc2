"""Guards that keep a diverged run from saving or resuming garbage: non-finite losses stop the
run at the step they appear, and no checkpoint or network with NaN/Inf weights is written or
restored."""

import math

import keras
import numpy as np


class TrainingDiverged(RuntimeError):
    """A loss or a weight became NaN or Inf; nothing after the last good checkpoint was saved."""


class UnusableCheckpoint(RuntimeError):
    """No checkpoint of a run's directory can be resumed from (each one is named)."""


class EarlierRunExists(FileExistsError):
    """A run that does not resume was pointed at a directory holding another run's checkpoints
    (they are replaced only when asked: overwrite=True, `--overwrite`)."""


def non_finite_weights(variables):
    """Names of the variables holding NaN or Inf (empty when all are finite)."""
    bad = []
    for v in variables:
        value = np.asarray(v.numpy() if hasattr(v, "numpy") else v)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            bad.append(getattr(v, "path", None) or getattr(v, "name", "?"))
    return bad


def check_finite_weights(model, what):
    """TrainingDiverged naming `what` and the first bad variables if `model` holds NaN/Inf."""
    bad = non_finite_weights(model.variables)
    if bad:
        raise TrainingDiverged(f"{what}: {len(bad)} variable(s) hold NaN or Inf (e.g. "
                               f"{', '.join(bad[:3])}); not saved")


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops `fit` at the first step whose logged losses are NaN or Inf.

    The step's update has already been applied, so the weights in memory are lost; what was saved
    before the step (the last epoch's checkpoint) is intact, and `describe_last_good()` says where
    it is. Keras' TerminateOnNaN only watches `loss` and ends the run quietly, with exit 0.

    Args:
      what: the network being trained, for the message ("AMC-GAN", "the motion classifier", ...).
      steps_per_epoch: to name the global step.
      describe_last_good: () -> text naming the last good checkpoint (or how to start over).
    """

    def __init__(self, what, steps_per_epoch, describe_last_good=None):
        super().__init__()
        self.what = what
        self.steps_per_epoch = steps_per_epoch
        self.describe_last_good = describe_last_good or (lambda: "nothing was saved")
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = {name: float(value) for name, value in (logs or {}).items()
               if np.ndim(value) == 0 and not math.isfinite(float(value))}
        if bad:
            step = self._epoch * self.steps_per_epoch + batch + 1
            self.model.stop_training = True
            raise TrainingDiverged(
                f"{self.what} diverged at step {step}: "
                f"{', '.join(f'{k}={v}' for k, v in sorted(bad.items()))}. "
                f"{self.describe_last_good()}. Lower the learning rates or check the data "
                f"(every example must be finite) before training again.")
