"""The keypoint-based motion predictor of appendix B.4 (Figure F): keypoint heatmaps of a video
-> motion class; §4.1 reports its accuracy on generated MUG videos (70.34% for AMC-GAN).

B.4's recipe, and ours:
  1. upscale the video to 128x128, run OpenFace, rescale the 68 keypoints to 64x64
     -> ours: resize the video to 64x64 (bilinear) and run our KeypointDetector, trained on the
        real clips' landmarks (amc_tf.training.keypoint_judge); its points are 64x64 pixels
  2. one Gaussian heatmap per keypoint, "variance of 1/28", merged per frame by a pixel-wise
     max into one 64x64 channel                                     -> keypoint_heatmaps
  3. drop the first four frames, concatenate the last 28 channel-wise -> heatmap_stack
  4. a 2D CNN                                                          -> KeypointMotionClassifier

The variance. B.4 does not say in which coordinates 1/28 is a variance. In pixels it would be
σ = 0.19 px: each keypoint lights a single pixel, not the "Gaussian blur" of §4.1. We read it
in the normalised frame coordinates [-1, 1] that heatmap code of the time commonly used (the
frame is 2 units wide, one unit = 32 px of 64): σ = sqrt(1/28) * 32 ≈ 6.0 px, a blur that
overlaps neighbouring landmarks without merging a face into one blob (in [0, 1] coordinates
σ would be 12 px, a fifth of the frame). The reading is one constant, HEATMAP_VARIANCE, carried
by the classifier's config, so a saved judge renders its heatmaps as it was trained.
"""

import keras
from keras import ops

from amc_tf.data import features
from amc_tf.models.common import Network, batch_norm, fold_time, unfold_time

# B.4: heatmaps (and the detector's points) live on the 64x64 frame.
HEATMAP_SIZE = features.FRAME_SIZE
# B.4's "variance of 1/28", in normalised frame coordinates [-1, 1] (module docstring).
HEATMAP_VARIANCE = 1.0 / 28.0
# B.4: stride 2 for the first four conv2d layers, 4 for the last (64 -> 4 -> 1).
STRIDES = (2, 2, 2, 2, 4)


def heatmap_sigma_px(size=HEATMAP_SIZE, variance=HEATMAP_VARIANCE):
    """σ in pixels of a size x size heatmap for a variance in [-1, 1] frame coordinates."""
    return (variance ** 0.5) * size / 2.0


def keypoint_heatmaps(points, size=HEATMAP_SIZE, variance=HEATMAP_VARIANCE):
    """B.4's per-frame heatmap: (batch, T, L, 2) (x, y) pixel coordinates of a size x size frame
    (pixel centres at integers) -> (batch, T, size, size) in [0, 1], the max over the L
    unnormalised Gaussians exp(-d^2 / 2σ^2) (peak 1 at each keypoint).

    `variance` is in normalised frame coordinates (one unit = size / 2 pixels; module docstring).
    """
    points = ops.cast(points, "float32")
    sigma2 = float(variance) * (size / 2.0) ** 2
    grid = ops.arange(size, dtype="float32")
    # The Gaussian is separable: exp over L x (H + W) values, products for the H x W grid.
    gx = ops.exp(-ops.square(grid - points[..., 0:1]) / (2.0 * sigma2))    # (B, T, L, W)
    gy = ops.exp(-ops.square(grid - points[..., 1:2]) / (2.0 * sigma2))    # (B, T, L, H)
    heatmaps = None
    # A running max over the landmarks keeps memory at one (B, T, H, W) map even for 68 of them.
    for l in range(points.shape[2]):
        one = gy[:, :, l, :, None] * gx[:, :, l, None, :]
        heatmaps = one if heatmaps is None else ops.maximum(heatmaps, one)
    return heatmaps


def dropped_frames(num_frames):
    """B.3/B.4's rule: of T = 32 frames the first 4 are dropped; other T drop T // 8."""
    return num_frames // 8


def heatmap_stack(heatmaps):
    """B.4's input: (batch, T, size, size) -> (batch, size, size, T - T // 8), the last 28 of 32
    frames (14 of 16, 7 of 8) as channels; the dropped first frames are the ones nearest y_a."""
    kept = heatmaps[:, dropped_frames(heatmaps.shape[1]):]
    return ops.transpose(kept, (0, 2, 3, 1))


def video_keypoints(detector, video):
    """The detector's (x, y) on every frame: video float32 (batch, T, S, S, 3) in [-1, 1] at any
    S -> (batch, T, L, 2) in pixels of the 64x64 frame.

    Frames of another size are first resized to 64x64 bilinearly: our equivalent of B.4's
    "upscale to 128x128, detect, rescale the keypoints to 64x64".
    """
    size = detector.frame_size
    frames, batch_time = fold_time(ops.cast(video, "float32"))
    if frames.shape[1] != size:
        frames = ops.image.resize(frames, (size, size), interpolation="bilinear")
    return unfold_time(detector.locate(frames, training=False), batch_time)


def keypoint_heatmap_stack(detector, video, variance=HEATMAP_VARIANCE):
    """The classifier's input for a video (batch, T, S, S, 3): detect, render (keypoint_heatmaps)
    and stack (heatmap_stack) -> (batch, 64, 64, T - T // 8)."""
    points = video_keypoints(detector, video)
    return heatmap_stack(keypoint_heatmaps(points, detector.frame_size, variance))


def keypoint_motion_logits(detector, classifier, video, training=False):
    """B.4 end to end: video float32 (batch, T, S, S, 3) in [-1, 1] -> logits (batch, c).

    keras.ops only, so it traces inside a tf.function (a SavedModel signature). The heatmaps
    use the variance the classifier was trained with.
    """
    heatmaps = keypoint_heatmap_stack(detector, video, classifier.heatmap_variance)
    return classifier(heatmaps, training=training)


@keras.saving.register_keras_serializable(package="amc_tf")
class KeypointMotionClassifier(Network):
    """c-way 2D CNN on stacked heatmaps (B.4): [conv2d(32) - BN - lrelu] x 4 (4x4, stride 2),
    conv(32) - BN - lrelu (stride 4) -> φ(x̃) of size 32, then fc(32) - BN - lrelu - fc(c) - BN -
    lrelu - dropout(0.5) - fc(c). The paper prints fc(6) for MUG; we use c for both fc(c).

    Args:
        num_classes: c, the motion classes.
        num_channels: frames stacked as channels, T - T // 8 (28 for T = 32).
        filters: filters of the five 4x4 convolutions (strides 2, 2, 2, 2, 4).
        fc_units: units of the first fully-connected layer.
        dropout: dropout rate before the logits.
        leaky_relu_slope: negative slope of the leaky ReLUs.
        heatmap_variance: the variance its input heatmaps are rendered with (keypoint_heatmaps);
            kept here so a saved judge renders heatmaps as it was trained.

    Input: heatmaps float32 (batch, 64, 64, num_channels) (heatmap_stack). Output: logits
    (batch, c) (the softmax is in the loss).

    Example, B.4's predictor for MUG:
        KeypointMotionClassifier(num_classes=6, num_channels=28, filters=(32,) * 5,
                                 fc_units=32, dropout=0.5, leaky_relu_slope=0.2)
    """

    def __init__(self, num_classes, num_channels, filters=(32,) * 5, fc_units=32, dropout=0.5,
                 leaky_relu_slope=0.2, heatmap_variance=HEATMAP_VARIANCE, **kwargs):
        super().__init__(**kwargs)
        if len(filters) != len(STRIDES):
            raise ValueError(f"B.4's CNN has {len(STRIDES)} convolutions; got filters {filters}")
        self.num_classes = num_classes
        self.num_channels = num_channels
        self.filters = tuple(filters)
        self.fc_units = fc_units
        self.dropout_rate = dropout
        self.leaky_relu_slope = leaky_relu_slope
        self.heatmap_variance = heatmap_variance
        self.convs = [keras.layers.Conv2D(f, 4, strides=s, padding="same", name=f"conv2d_{i + 1}")
                      for i, (f, s) in enumerate(zip(filters, STRIDES))]
        self.norms = [batch_norm(False, f"bn{i + 1}") for i in range(len(filters))]
        self.flatten = keras.layers.Flatten()
        self.fc1 = keras.layers.Dense(fc_units, name="fc1")
        self.fc1_norm = batch_norm(False, "fc1_bn")
        self.fc2 = keras.layers.Dense(num_classes, name="fc2")
        self.fc2_norm = batch_norm(False, "fc2_bn")
        self.dropout = keras.layers.Dropout(dropout)
        self.out = keras.layers.Dense(num_classes, name="logits")

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "num_channels": self.num_channels, "filters": self.filters,
                "fc_units": self.fc_units, "dropout": self.dropout_rate,
                "leaky_relu_slope": self.leaky_relu_slope,
                "heatmap_variance": self.heatmap_variance}

    def dummy_inputs(self, batch_size=1):
        return ops.zeros((batch_size, HEATMAP_SIZE, HEATMAP_SIZE, self.num_channels))

    def lrelu(self, x):
        return ops.leaky_relu(x, self.leaky_relu_slope)

    def embed(self, heatmaps, training=False):
        """φ(x̃): (batch, 32) for 64x64 heatmaps (1 x 1 x 32 after the stride-4 conv)."""
        expected = (HEATMAP_SIZE, HEATMAP_SIZE, self.num_channels)
        if tuple(heatmaps.shape[1:]) != expected:
            raise ValueError(f"the keypoint classifier takes heatmaps of (H, W, frames) = "
                             f"{expected}, got {tuple(heatmaps.shape[1:])}")
        x = ops.cast(heatmaps, self.compute_dtype)
        for conv, norm in zip(self.convs, self.norms):
            x = self.lrelu(norm(conv(x), training=training))
        return self.flatten(x)

    def call(self, heatmaps, training=False):
        x = self.embed(heatmaps, training=training)
        x = self.lrelu(self.fc1_norm(self.fc1(x), training=training))
        x = self.lrelu(self.fc2_norm(self.fc2(x), training=training))
        x = self.dropout(x, training=training)
        return ops.cast(self.out(x), "float32")


def build_keypoint_classifier(judge_config, num_classes, num_frames, **kwargs):
    """B.4's classifier of a KeypointJudgeConfig (clf_filters, clf_fc_units, clf_dropout,
    leaky_relu_slope, heatmap_variance) for videos of `num_frames` frames."""
    return KeypointMotionClassifier(
        num_classes=num_classes, num_channels=num_frames - dropped_frames(num_frames),
        filters=judge_config.clf_filters, fc_units=judge_config.clf_fc_units,
        dropout=judge_config.clf_dropout, leaky_relu_slope=judge_config.leaky_relu_slope,
        heatmap_variance=judge_config.heatmap_variance, **kwargs)
