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
    a directory holding the family's generator file. A file of another family is named with the
    family it needs (it would otherwise read as corrupt: its classes are not registered)."""
    from amc_tf.models.registry import get_family
    named = family
    family = get_family(family)
    if tf.io.gfile.isdir(path):
        path = posixpath.join(path, family.generator_file())
    if named is None:
        saved = saved_family(path)
        if saved is not None and saved != family.name:
            raise ValueError(f"{path} holds a {saved} generator, not {family.name}'s: load it "
                             f"with family={saved!r} (amc-tf: --model {saved})")
    return family.load_generator(path)


def saved_family(path):
    """The registered family whose networks saved the `.keras` file at `path`, from the class
    its config.json names; None where the file or the class cannot be read."""
    import importlib
    import json

    from amc_tf.models.registry import family_names, get_family
    try:
        with tf.io.gfile.GFile(path, "rb") as f, zipfile.ZipFile(f) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, tf.errors.OpError):
        return None
    name = config.get("registered_name") or config.get("class_name")
    for family in map(get_family, family_names()):
        importlib.import_module(family.networks_module)     # registers its classes
        package = family.networks_module.rsplit(".", 1)[0]
        found = keras.saving.get_registered_object(name)
        if found is not None and found.__module__.startswith(package + "."):
            return family.name
    return None


def load_classifier(path):
    """A MotionClassifier from a `.keras` file or a directory holding `classifier.keras`."""
    from amc_tf.models import classifier  # noqa: F401  registers MotionClassifier
    if tf.io.gfile.isdir(path):
        path = posixpath.join(path, CLASSIFIER_FILE)
    return load_model(path)
