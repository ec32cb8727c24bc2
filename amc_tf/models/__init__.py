"""amc_tf.models: generator, discriminators, ConvLSTM cell, motion classifier, AMCGAN."""

from amc_tf.models.classifier import MotionClassifier, classifier_input
from amc_tf.models.convlstm import ConvLSTMCell
from amc_tf.models.discriminators import AppearanceDiscriminator, MotionDiscriminator
from amc_tf.models.generator import Generator, motion_condition
from amc_tf.models.saving import load_classifier, load_generator, save_model

__all__ = ["AMCGAN", "AppearanceDiscriminator", "ConvLSTMCell", "Generator", "MotionClassifier",
           "MotionDiscriminator", "classifier_input", "load_classifier", "load_generator",
           "motion_condition", "save_model"]


def __getattr__(name):
    # AMCGAN's train step uses TensorFlow directly; import it lazily.
    if name == "AMCGAN":
        from amc_tf.models.amcgan import AMCGAN
        return AMCGAN
    raise AttributeError(name)
