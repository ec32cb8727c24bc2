"""Small pieces every family's networks share: the network base class, normalisation, time
folding."""

import keras
from keras import ops


def on_tensorflow():
    """Whether Keras runs on TensorFlow. The tf.distribute and custom-gradient paths below are
    TF's; under another backend (JAX on a machine without TensorFlow) the layers fall back to
    Keras's own ops, so importing a model does not import TensorFlow."""
    return keras.backend.backend() == "tensorflow"


@keras.saving.register_keras_serializable(package="amc_tf")
class BatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization whose `synchronized` statistics are the global batch's,
    computed in two passes: the mean (one all-reduce of sums and counts), then the mean squared
    deviation from it (a second all-reduce). Keras's own takes E[x²] − E[x]² from one pass,
    which cancels catastrophically when a channel's mean is large against its spread, as it is
    for the tiny per-call batches of the discriminators' heads (4 clips); its rounding then
    depends on how the batch is split across replicas, and the BN backward amplifies it into
    gradients that differed by 1-3 % between one worker and two (tests/test_multi_worker.py).
    With one replica there is nothing to reduce: tf.nn.moments, also two passes.

    Keras's class name on purpose: a .keras file stores the weights of layers held in a list
    under their class name (`batch_normalization_2/vars`), so a generator saved before this
    class existed still loads (as Keras's layer; inference reads the same moving statistics).

    Off TensorFlow there is no tf.distribute to synchronise over (Keras refuses `synchronized`
    there): the layer keeps one device's statistics, Keras's two-pass moments.
    """

    def __init__(self, *args, synchronized=False, **kwargs):
        super().__init__(*args, synchronized=synchronized and on_tensorflow(), **kwargs)

    def _moments(self, inputs, mask):
        if not on_tensorflow():
            return super()._moments(inputs, mask)
        import tensorflow as tf
        context = tf.distribute.get_replica_context()
        if not self.synchronized or mask is not None or context is None:
            return super()._moments(inputs, mask)
        axes = self._reduction_axes
        if context.num_replicas_in_sync == 1:
            return tf.nn.moments(inputs, axes)
        count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(inputs), axes)), inputs.dtype)
        total, count = context.all_reduce(
            tf.distribute.ReduceOp.SUM, [tf.reduce_sum(inputs, axes, keepdims=True), count])
        mean = total / count
        squares = tf.reduce_sum(tf.square(inputs - mean), axes, keepdims=True)
        variance = context.all_reduce(tf.distribute.ReduceOp.SUM, squares) / count
        return tf.squeeze(mean, axes), tf.squeeze(variance, axes)


def batch_norm(synchronized, name=None):
    """BN with statistics over the global batch under tf.distribute when `synchronized`."""
    return BatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=synchronized, name=name)


def leaky_relu(x, slope):
    """max(x, slope * x) whose gradient is read from its output: for slope > 0, y > 0 exactly
    where x > 0. TF's own LeakyReluGrad reads the input, so the backward kept one more
    activation-sized tensor per layer (the conv or BN output) beside the output the next conv
    keeps anyway, and Grappler could not fuse conv + bias + activation (PyTorch's in-place
    leaky_relu keeps only the output too). Same values and gradients as ops.leaky_relu, which
    other backends use (JAX's autodiff of max keeps what XLA decides)."""
    if slope <= 0 or not on_tensorflow():
        return ops.leaky_relu(x, slope)
    return _leaky_relu_from_output(x, slope)


def _leaky_relu_from_output(x, slope):
    """The op recorded on the active gradient tapes (a train step's) with a backward function
    that reads y; the tape, not a global, holds that function. Not tf.custom_gradient: in graph
    mode it registers a new gradient function per call in TF's global registry, which never
    drops it, and its closure holds the whole traced graph: every trace stayed alive until the
    process exited (docs/testing.md). Symbolic differentiation (tf.gradients, the body of a
    tf.while_loop such as TwoStreamVAN's harder step, a SavedModel's saved gradients) takes
    TF's own LeakyRelu gradient, which reads x: the same values. A gradient registered once to
    read y there cannot be saved: SavedModel traces it without an op."""
    import tensorflow as tf
    from tensorflow.python.eager import record
    x = tf.convert_to_tensor(x)
    with record.stop_recording():
        y = tf.nn.leaky_relu(x, slope)
    record.record_operation(
        "LeakyRelu", [y], [x],
        lambda grad: [tf.raw_ops.LeakyReluGrad(gradients=grad, features=y, alpha=slope)])
    return y


def fold_time(x):
    """(batch, time, ...) -> (batch * time, ...); returns the tensor and (batch, time)."""
    shape = ops.shape(x)
    return ops.reshape(x, (-1,) + tuple(x.shape[2:])), (shape[0], shape[1])


def unfold_time(x, batch_time):
    batch, time = batch_time
    return ops.reshape(x, (batch, time) + tuple(x.shape[1:]))


def check_space_to_depth(frame_size, block):
    """A network's space_to_depth block, checked when it is built: >= 1, dividing its frames."""
    if int(block) < 1 or frame_size % int(block):
        raise ValueError(f"space_to_depth block {block} must be >= 1 and divide the frame size "
                         f"{frame_size}")


def space_to_depth(frames, block):
    """(N, H, W, C) -> (N, H/block, W/block, block² C): each block x block patch's pixels as
    channels, so a network at H/block still reads every pixel (block 1: unchanged)."""
    if block == 1:
        return frames
    _, height, width, channels = frames.shape
    x = ops.reshape(frames, (-1, height // block, block, width // block, block, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height // block, width // block, block * block * channels))


def tile_spatial(vector, size):
    """(batch, channels) -> (batch, size, size, channels) (the "tiling" of Figure A)."""
    return ops.tile(vector[:, None, None, :], (1, size, size, 1))


class Network(keras.Model):
    """A keras.Model built by one call on zeros shaped like its inputs (`dummy_inputs`).

    Subclasses take their own hyper-parameters in `__init__`, return exactly them from
    `get_config` and create their sublayers' weights on the first call, so `build()` needs no
    shapes and `.keras` files round-trip through keras.saving.load_model.
    """

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # The loader's dtype policy, not the training run's: a network trained under mixed
        # precision loads in float32 unless the loading code sets a policy.
        config.pop("dtype", None)
        return cls(**config)

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


class AdversarialModel(keras.Model):
    """The trainable model of a GAN family: its generator against its discriminators, one
    optimizer per side (attributes: the training checkpoint finds them there), the loss trackers
    (`self.trackers`, Mean metrics) as metrics, and the config's round trip.

    Subclasses set `config_class`, create `generator`, the discriminators and `trackers` in
    `__init__`, and implement `discriminators()` and `train_step` (`compile` makes one Adam per
    side from the config).
    """

    config_class = None

    def discriminators(self):
        """The discriminators that train (an ablation may leave one out)."""
        raise NotImplementedError

    def compile(self, g_optimizer=None, d_optimizer=None, jit_compile=None, **kwargs):
        """One Adam per side from the config (g_ / d_learning_rate, adam_beta_1, adam_beta_2
        where the config has it, else Adam's 0.999); one optimizer over several discriminators
        updates them as one each would (Adam's state is per variable). jit_compile defaults to
        config.jit_compile."""
        c = self.config
        adam = lambda lr: keras.optimizers.Adam(lr, beta_1=c.adam_beta_1,
                                                beta_2=getattr(c, "adam_beta_2", 0.999))
        self.g_optimizer = g_optimizer or adam(c.g_learning_rate)
        self.d_optimizer = d_optimizer or adam(c.d_learning_rate)
        super().compile(jit_compile=c.jit_compile if jit_compile is None else jit_compile,
                        **kwargs)

    def networks(self):
        """Every network the model holds, built whether or not it trains."""
        return (self.generator, *self.discriminators())

    def build_all(self):
        """Builds every network and both optimizers (call inside strategy.scope(), before fit)."""
        self.build()
        self.g_optimizer.build(self.generator_variables())
        self.d_optimizer.build(self.discriminator_variables())

    def build(self, input_shape=None):
        for net in self.networks():
            net.build()
        self.built = True

    def generator_variables(self):
        return self.generator.trainable_variables

    def clip_conditions(self, data):
        """A batch of clips as conditions: the video, y_a = its first frame, the class, and z
        (the batch's own `noise`, else drawn from N(0, I) on TensorFlow; other backends have no
        stateful draw inside a step, so their batches carry z)."""
        video = data["video"]
        noise = data.get("noise")
        if noise is None:
            if not on_tensorflow():
                raise ValueError(f"the batch has no 'noise': under the "
                                 f"{keras.backend.backend()} backend the batch carries z")
            import tensorflow as tf
            noise = tf.random.normal([tf.shape(video)[0], self.config.noise_dim])
        return {"video": video, "appearance": video[:, 0],
                "motion_class": ops.cast(data["motion_class"], "int32"), "noise": noise}

    def discriminator_variables(self):
        return [v for d in self.discriminators() for v in d.trainable_variables]

    @property
    def metrics(self):
        return list(self.trackers.values())

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(cls.config_class.from_dict(config.pop("config")), name=config.get("name"))
