"""Saving and loading trained networks as `.keras` files (config + weights), at any tf.io.gfile
path: local, gs:// (Vertex) or ram:// (tests). Keras itself reads and writes local files only, so
a local temporary file goes in between."""

import posixpath
import tempfile
import zipfile

import keras
import tensorflow as tf

CLASSIFIER_FILE = "classifier.keras"


def save_model(model, path):
    """Saves a built amc_tf network to `path` (a `.keras` file); returns the path."""
    tf.io.gfile.makedirs(posixpath.dirname(path))
    with tempfile.TemporaryDirectory(prefix="amc_tf_") as tmp:
        local = posixpath.join(tmp, posixpath.basename(path))
        model.save(local)
        tf.io.gfile.copy(local, path, overwrite=True)
    return path


def load_model(path):
    """The network in the `.keras` file at `path` (its classes must be registered)."""
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"no saved network at {path}")
    with tempfile.TemporaryDirectory(prefix="amc_tf_") as tmp:
        local = posixpath.join(tmp, posixpath.basename(path))
        tf.io.gfile.copy(path, local, overwrite=True)
        # Keras names the local copy and says "File not found" for a truncated zip.
        if not zipfile.is_zipfile(local):
            raise ValueError(f"{path} is not a readable .keras file (not a complete zip "
                             f"archive: truncated or corrupt); train that network again")
        try:
            return keras.saving.load_model(local, compile=False)
        except Exception as e:  # noqa: BLE001  re-raised naming the file, not the local copy
            detail = str(e).replace(local, path).strip().splitlines()
            raise ValueError(f"cannot load the network in {path}: {type(e).__name__}: "
                             f"{detail[0] if detail else ''}. It is corrupt or was saved by "
                             f"another amc_tf version; train that network again") from e


def load_generator(path, family=None):
    """The generator of `family` (a registered name, default AMC-GAN) from a `.keras` file or
    a directory holding the family's generator file."""
    from amc_tf.models.registry import get_family
    family = get_family(family)
    if tf.io.gfile.isdir(path):
        path = posixpath.join(path, family.generator_file())
    return family.load_generator(path)


def load_classifier(path):
    """A MotionClassifier from a `.keras` file or a directory holding `classifier.keras`."""
    from amc_tf.models import classifier  # noqa: F401  registers MotionClassifier
    if tf.io.gfile.isdir(path):
        path = posixpath.join(path, CLASSIFIER_FILE)
    return load_model(path)
