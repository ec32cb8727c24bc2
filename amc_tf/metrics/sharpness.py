"""What a person sees on the contact sheet, as numbers (issue 14): how sharp the generated frames
are against the real ones, whether the first generated frame stands out from y_a, and whether the
colours of y_a last through the video.

Pure numpy on uint8 videos (B, T, H, W, 3) at the clips' size (64x64), so the same figures come
from the library, a SavedModel or a server, for every model family.
"""

import numpy as np


def _unit(video):
    return np.asarray(video, np.float32) / 255.0


def laplacian_energy(frames):
    """Mean absolute 4-neighbour Laplacian of (..., H, W, 3) uint8 frames in [0, 1] units,
    over the interior pixels, channels and frames: high for edges and texture, low for blur."""
    x = _unit(frames)
    lap = (x[..., :-2, 1:-1, :] + x[..., 2:, 1:-1, :] + x[..., 1:-1, :-2, :] +
           x[..., 1:-1, 2:, :] - 4.0 * x[..., 1:-1, 1:-1, :])
    return float(np.mean(np.abs(lap)))


def sharpness_ratio(generated, real):
    """Laplacian energy of generated frames 2..T over the real clips' frames 2..T (frame 1 is
    y_a in both where the family takes one, so it is left out of both)."""
    return laplacian_energy(np.asarray(generated)[:, 1:]) / max(
        laplacian_energy(np.asarray(real)[:, 1:]), 1e-12)


def first_frame_gaps(video):
    """Mean absolute difference of frames 2 and 3 (the first and second generated) from
    frame 1 (y_a), per video: (B, 2). A first-frame artifact shows as gap 1 > gap 2."""
    x = _unit(video)
    return np.stack([np.mean(np.abs(x[:, t] - x[:, 0]), axis=(1, 2, 3)) for t in (1, 2)],
                    axis=1)


def colour_drift(video):
    """Per video, the largest absolute change of a channel's mean over the frame from frame 1 to
    any later frame, in [0, 1] units: (B,). Moving limbs change it a little in real clips too."""
    means = _unit(video).mean(axis=(2, 3))                   # (B, T, 3)
    return np.max(np.abs(means[:, 1:] - means[:, :1]), axis=(1, 2))


def quality_report(generated, real):
    """The figures above for generated videos against the real clips they were asked from
    (same first frames, classes): a dict of floats."""
    generated, real = np.asarray(generated), np.asarray(real)
    if generated.shape != real.shape:
        raise ValueError(f"generated videos {generated.shape} and real clips {real.shape} differ "
                         f"in shape: compare them at the same size and length")
    gaps = first_frame_gaps(generated)
    real_gaps = first_frame_gaps(real)
    return {
        "sharpness_generated": laplacian_energy(generated[:, 1:]),
        "sharpness_real": laplacian_energy(real[:, 1:]),
        "sharpness_ratio": sharpness_ratio(generated, real),
        "first_gap_generated": float(gaps[:, 0].mean()),
        "second_gap_generated": float(gaps[:, 1].mean()),
        # > 1: the first generated frame is farther from y_a than the second (an artifact).
        "first_frame_excess": float(gaps[:, 0].mean() / max(gaps[:, 1].mean(), 1e-12)),
        "first_frame_excess_real": float(real_gaps[:, 0].mean() /
                                         max(real_gaps[:, 1].mean(), 1e-12)),
        "colour_drift_generated": float(colour_drift(generated).mean()),
        "colour_drift_real": float(colour_drift(real).mean()),
    }
