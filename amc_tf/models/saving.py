"""Saving and loading trained networks as `.keras` files (config + weights)."""

import os

import keras

GENERATOR_FILE = "generator.keras"
CLASSIFIER_FILE = "classifier.keras"


def save_model(model, path):
    """Saves a built amc_tf network to `path` (a `.keras` file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    model.save(path)
    return path


def _load(path, default_file):
    # Importing the modules registers the classes with keras.saving.
    from amc_tf.models import classifier, generator  # noqa: F401
    if os.path.isdir(path):
        path = os.path.join(path, default_file)
    return keras.saving.load_model(path, compile=False)


def load_generator(path):
    """A Generator from a `.keras` file or a directory holding `generator.keras`."""
    return _load(path, GENERATOR_FILE)


def load_classifier(path):
    """A MotionClassifier from a `.keras` file or a directory holding `classifier.keras`."""
    return _load(path, CLASSIFIER_FILE)
