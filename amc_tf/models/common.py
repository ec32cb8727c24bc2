"""Small shared pieces: config (de)serialisation for the models, normalisation, activations."""

import keras
from keras import ops

from amc_tf.config import AMCConfig


def as_config(config):
    """An AMCConfig from an AMCConfig or its dict (what get_config stores)."""
    if isinstance(config, AMCConfig):
        return config
    return AMCConfig.from_dict(dict(config))


def batch_norm(config, name=None):
    """BN with statistics over the global batch under tf.distribute when sync_batchnorm."""
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5,
                                           synchronized=config.sync_batchnorm, name=name)


def lrelu(x, config):
    return ops.leaky_relu(x, negative_slope=config.leaky_relu_slope)


def fold_time(x):
    """(batch, time, ...) -> (batch * time, ...); returns the tensor and (batch, time)."""
    shape = ops.shape(x)
    return ops.reshape(x, (-1,) + tuple(x.shape[2:])), (shape[0], shape[1])


def unfold_time(x, batch_time):
    batch, time = batch_time
    return ops.reshape(x, (batch, time) + tuple(x.shape[1:]))


def tile_spatial(vector, size):
    """(batch, channels) -> (batch, size, size, channels) (the "tiling" of Figure A)."""
    return ops.tile(vector[:, None, None, :], (1, size, size, 1))


class ConfigModel(keras.Model):
    """A keras.Model whose only constructor argument is an AMCConfig (or its dict).

    Subclasses build every weight on the first call; `build_from_config` does that call on zeros
    so `.keras` files round-trip through keras.saving.load_model.
    """

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = as_config(config)

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        amc = config.pop("config")
        config.pop("trainable", None)
        config.pop("dtype", None)
        return cls(amc, name=config.get("name"))

    def dummy_inputs(self, batch_size=1):
        raise NotImplementedError

    def build(self, input_shape=None):
        if not self.built:
            # Running `call` once creates every sublayer's weights (their own build()).
            self.call(self.dummy_inputs(), training=False)
        self.built = True

    def get_build_config(self):
        return {"built": True}

    def build_from_config(self, config):
        self.build()
