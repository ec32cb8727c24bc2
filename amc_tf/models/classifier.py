"""The 3D-CNN motion classifier of appendix B.3 (Figure E), trained on real clips."""

import keras
from keras import ops

from amc_tf.models.common import ConfigModel, batch_norm, lrelu


def classifier_input(video, config):
    """B.3's input rule: drop the first frames, repeat the first/last remaining frames.

    For T = 32: drop 4 frames, pad the first and the last frame twice each -> 32 frames. Other T
    drop T/8 frames and pad as evenly. A clip with `source_frames` frames (a preprocessed clip
    when T < 32) is first subsampled every `frame_stride` frames; frames of another size are
    resized to `frame_size`.
    """
    frames = video.shape[1]
    if frames == config.source_frames and frames != config.num_frames:
        video = video[:, ::config.frame_stride]
    elif frames != config.num_frames:
        raise ValueError(f"classifier expects {config.num_frames} (or {config.source_frames}) "
                         f"frames, got {frames}")
    if video.shape[2] != config.frame_size or video.shape[3] != config.frame_size:
        t = video.shape[1]
        flat = ops.reshape(video, (-1,) + tuple(video.shape[2:]))
        flat = ops.image.resize(flat, (config.frame_size, config.frame_size),
                                interpolation="area" if video.shape[2] > config.frame_size
                                else "bilinear")
        video = ops.reshape(flat, (-1, t, config.frame_size, config.frame_size, 3))
    drop = config.classifier_drop_frames
    if drop == 0:
        return video
    kept = video[:, drop:]
    before, after = drop // 2, drop - drop // 2
    first = ops.repeat(kept[:, :1], before, axis=1)
    last = ops.repeat(kept[:, -1:], after, axis=1)
    return ops.concatenate([first, kept, last], axis=1)


@keras.saving.register_keras_serializable(package="amc_tf")
class MotionClassifier(ConfigModel):
    """c-way 3D CNN: conv3d(64) - lrelu - conv3d(128) - BN - lrelu - conv3d(256) - BN - lrelu -
    conv3d(512) - flatten - fc(128) - BN - lrelu - dropout(0.5) - fc(c).

    Input: video float32 (batch, T, H, W, 3) in [-1, 1], the full clip (y_a + generated frames
    or a real clip); the B.3 input rule is applied inside. Output: logits (batch, c).
    """

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        c = self.config
        self.convs = [keras.layers.Conv3D(f, 4, strides=s, padding="same", name=f"conv3d_{i + 1}")
                      for i, (f, s) in enumerate(zip(c.clf_filters, c.clf_strides))]
        self.norms = [None, batch_norm(c, "bn2"), batch_norm(c, "bn3"), None]
        self.flatten = keras.layers.Flatten()
        self.fc = keras.layers.Dense(c.clf_fc_units, name="fc")
        self.fc_norm = batch_norm(c, "fc_bn")
        self.dropout = keras.layers.Dropout(c.clf_dropout)
        self.out = keras.layers.Dense(c.num_classes, name="logits")

    def dummy_inputs(self, batch_size=1):
        c = self.config
        return ops.zeros((batch_size, c.num_frames, c.frame_size, c.frame_size, 3))

    def embed(self, video, training=False):
        """φ(x): (batch, T/64 ... , 512) before flattening (2 x 2 x 512 for T=32, 64x64)."""
        x = ops.cast(classifier_input(video, self.config), self.compute_dtype)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = conv(x)
            if norm is not None:
                x = norm(x, training=training)
            if i < len(self.convs) - 1:
                x = lrelu(x, self.config)
        return x

    def call(self, video, training=False):
        x = self.flatten(self.embed(video, training=training))
        x = lrelu(self.fc_norm(self.fc(x), training=training), self.config)
        x = self.dropout(x, training=training)
        return ops.cast(self.out(x), "float32")
