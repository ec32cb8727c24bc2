"""Our stand-in for OpenFace in the keypoint-based evaluation of appendix B.4: a small heatmap
network that finds a dataset style's L landmarks on one 64x64 frame.

OpenFace cannot be installed here, so the judge trains its own detector on the real clips'
`landmarks` (amc_tf.training.keypoint_judge). Coordinates follow the examples' convention: (x, y)
in pixels of the 64x64 frame, pixel centres at integers.
"""

import keras
from keras import ops

from amc_tf.data import features
from amc_tf.models.common import Network, batch_norm


def soft_argmax(heatmap_logits, frame_size=features.FRAME_SIZE):
    """Expected (x, y) under a softmax over each heatmap: (batch, h, w, L) -> (batch, L, 2) in
    pixels of a frame_size x frame_size frame.

    Differentiable, so the detector trains on coordinates directly ("integral regression"), and
    the expectation is sub-pixel although the heatmap grid is coarser than the frame.
    """
    height, width, landmarks = heatmap_logits.shape[1:]
    logits = ops.cast(heatmap_logits, "float32")
    # (batch, L, h * w): one distribution per landmark.
    flat = ops.reshape(ops.transpose(logits, (0, 3, 1, 2)), (-1, landmarks, height * width))
    prob = ops.reshape(ops.softmax(flat, axis=-1), (-1, landmarks, height, width))
    # Grid cell j covers frame pixels [j * s, (j + 1) * s); its centre is (j + 0.5) * s - 0.5 in
    # the integer-centred pixel coordinates of the examples.
    xs = (ops.arange(width, dtype="float32") + 0.5) * (frame_size / width) - 0.5
    ys = (ops.arange(height, dtype="float32") + 0.5) * (frame_size / height) - 0.5
    x = ops.sum(ops.sum(prob, axis=2) * xs, axis=-1)
    y = ops.sum(ops.sum(prob, axis=3) * ys, axis=-1)
    return ops.stack([x, y], axis=-1)


@keras.saving.register_keras_serializable(package="amc_tf")
class KeypointCoordinateLoss(keras.losses.Loss):
    """Mean |soft-argmax(heatmap logits) - landmark| in pixels: the detector's training loss.

    A coordinate loss rather than a heatmap one: it optimises the error we report (pixels), gives
    sub-pixel points from a coarse heatmap grid and needs no target-heatmap width to choose. L1
    keeps the few badly annotated or occluded landmarks from dominating.

    Call: loss(landmarks (batch, L, 2), heatmap_logits (batch, h, w, L)).
    """

    def __init__(self, frame_size=features.FRAME_SIZE, name="keypoint_coordinate_l1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.frame_size = frame_size

    def call(self, landmarks, heatmap_logits):
        # Keras's function-loss wrapper would squeeze L = 1 heatmaps; a Loss subclass does not.
        error = ops.abs(soft_argmax(heatmap_logits, self.frame_size) - landmarks)
        return ops.mean(error, axis=(1, 2))

    def get_config(self):
        return {**super().get_config(), "frame_size": self.frame_size}


@keras.saving.register_keras_serializable(package="amc_tf")
class KeypointDetector(Network):
    """Fully-convolutional landmark detector: strided conv2d - BN - lrelu down, bilinear
    upsample - conv2d - BN - lrelu (with the encoder's map of that size, U-Net style) up, then a
    1x1 conv to one heatmap logit map per landmark.

    Args:
        num_landmarks: L, heatmaps out.
        filters: filters of the 3x3 stride-2 encoder convolutions (each halves the frame).
        up_filters: filters of the decoder steps (each doubles the map); the heatmap grid is
            frame_size / 2 ** (len(filters) - len(up_filters)) on a side.
        frame_size: H = W of the frames (the clips' 64).
        leaky_relu_slope: negative slope of the leaky ReLUs.

    Input: frames float32 (batch, H, W, 3) in [-1, 1]. Output: heatmap logits float32
    (batch, h, w, L); `locate` turns them into (batch, L, 2) pixel coordinates.

    Example, the cpu preset's detector for the 68 face landmarks (16x16 heatmaps):
        KeypointDetector(num_landmarks=68, filters=(16, 32, 64), up_filters=(32,),
                         frame_size=64, leaky_relu_slope=0.2)
    """

    def __init__(self, num_landmarks, filters, up_filters, frame_size=features.FRAME_SIZE,
                 leaky_relu_slope=0.2, **kwargs):
        super().__init__(**kwargs)
        if len(up_filters) >= len(filters):
            raise ValueError(f"up_filters ({len(up_filters)} steps) must be fewer than filters "
                             f"({len(filters)}): the decoder returns to an encoder map's size")
        self.num_landmarks = num_landmarks
        self.filters = tuple(filters)
        self.up_filters = tuple(up_filters)
        self.frame_size = frame_size
        self.leaky_relu_slope = leaky_relu_slope
        self.convs = [keras.layers.Conv2D(f, 3, strides=2, padding="same", name=f"conv{i + 1}")
                      for i, f in enumerate(filters)]
        self.norms = [batch_norm(False, f"bn{i + 1}") for i in range(len(filters))]
        self.up_convs = [keras.layers.Conv2D(f, 3, padding="same", name=f"up_conv{i + 1}")
                         for i, f in enumerate(up_filters)]
        self.up_norms = [batch_norm(False, f"up_bn{i + 1}") for i in range(len(up_filters))]
        self.upsample = keras.layers.UpSampling2D(2, interpolation="bilinear")
        self.heatmap = keras.layers.Conv2D(num_landmarks, 1, name="heatmap")

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks,
                "filters": self.filters, "up_filters": self.up_filters,
                "frame_size": self.frame_size, "leaky_relu_slope": self.leaky_relu_slope}

    @property
    def heatmap_size(self):
        return self.frame_size // 2 ** (len(self.filters) - len(self.up_filters))

    def dummy_inputs(self, batch_size=1):
        return ops.zeros((batch_size, self.frame_size, self.frame_size, 3))

    def call(self, frames, training=False):
        x = ops.cast(frames, self.compute_dtype)
        skips = []
        for conv, norm in zip(self.convs, self.norms):
            skips.append(x)
            x = ops.leaky_relu(norm(conv(x), training=training), self.leaky_relu_slope)
        for conv, norm in zip(self.up_convs, self.up_norms):
            # Fine positions come back from the encoder map of the same size.
            x = ops.concatenate([self.upsample(x), skips.pop()], axis=-1)
            x = ops.leaky_relu(norm(conv(x), training=training), self.leaky_relu_slope)
        return ops.cast(self.heatmap(x), "float32")

    def locate(self, frames, training=False):
        """(batch, L, 2): each landmark's (x, y) in pixels of the frame, by soft-argmax."""
        return soft_argmax(self(frames, training=training), self.frame_size)


def build_keypoint_detector(judge_config, num_landmarks, **kwargs):
    """The detector of a KeypointJudgeConfig (detector_filters, detector_up_filters,
    leaky_relu_slope) for a style with `num_landmarks` landmarks; kwargs go to keras.Model."""
    return KeypointDetector(num_landmarks=num_landmarks, filters=judge_config.detector_filters,
                            up_filters=judge_config.detector_up_filters,
                            frame_size=features.FRAME_SIZE,
                            leaky_relu_slope=judge_config.leaky_relu_slope, **kwargs)
