"""What a person sees on the contact sheet, as numbers (issue 14): how sharp the generated frames
are against the real ones, whether the first generated frame stands out from y_a, and whether the
colours of y_a last through the video.

Pure numpy on uint8 videos (B, T, H, W, 3) at the clips' size (64x64), so the same figures come
from the library, a SavedModel or a server, for every model family.
"""

import numpy as np


def _unit(video):
    return np.asarray(video, np.float32) / 255.0


# A pixel "moves" where a frame differs from y_a by more than this (channel mean, [0, 1] units).
MOVING_THRESHOLD = 0.06


def _laplacian_map(frames):
    """|4-neighbour Laplacian| of (..., H, W, 3) uint8 frames over the interior pixels, the
    channels' mean: (..., H-2, W-2) in [0, 1] units."""
    x = _unit(frames)
    lap = (x[..., :-2, 1:-1, :] + x[..., 2:, 1:-1, :] + x[..., 1:-1, :-2, :] +
           x[..., 1:-1, 2:, :] - 4.0 * x[..., 1:-1, 1:-1, :])
    return np.abs(lap).mean(axis=-1)


def laplacian_energy(frames):
    """Mean absolute 4-neighbour Laplacian of (..., H, W, 3) uint8 frames in [0, 1] units,
    over the interior pixels, channels and frames: high for edges and texture, low for blur."""
    return float(np.mean(_laplacian_map(frames)))


def sharpness_ratio(generated, real):
    """Laplacian energy of generated frames 2..T over the real clips' frames 2..T (frame 1 is
    y_a in both where the family takes one, so it is left out of both)."""
    return laplacian_energy(np.asarray(generated)[:, 1:]) / max(
        laplacian_energy(np.asarray(real)[:, 1:]), 1e-12)


def sharpness_by_region(generated, real):
    """Where the sharpness goes: the interior pixels split into "moving", where the real clip
    moves away from its frame 1 (y_a) by > MOVING_THRESHOLD in any frame (the area its limbs
    sweep), and "static", the rest (the background and the body parts that stay put, which the
    generated video should keep as y_a has them). Returns {region: (share of pixels, generated /
    real Laplacian energy of frames 2..T within it)}: a blurred background shows in "static",
    soft limbs in "moving". The real clip alone draws the regions, so blur cannot move them."""
    generated, real = np.asarray(generated), np.asarray(real)
    swept = np.any(np.abs(_unit(real[:, 1:]) - _unit(real[:, :1])).mean(-1) > MOVING_THRESHOLD,
                   axis=1)[:, None, 1:-1, 1:-1]
    moving = np.broadcast_to(swept, (real.shape[0], real.shape[1] - 1) + swept.shape[2:])
    lap_g, lap_r = _laplacian_map(generated[:, 1:]), _laplacian_map(real[:, 1:])
    out = {}
    for name, where in (("static", ~moving), ("moving", moving)):
        out[name] = (float(where.mean()),
                     float(lap_g[where].sum() / max(lap_r[where].sum(), 1e-12)))
    return out


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
    regions = sharpness_by_region(generated, real)
    return {
        "sharpness_generated": laplacian_energy(generated[:, 1:]),
        "sharpness_real": laplacian_energy(real[:, 1:]),
        "sharpness_ratio": sharpness_ratio(generated, real),
        "moving_share": regions["moving"][0],
        "sharpness_ratio_static": regions["static"][1],
        "sharpness_ratio_moving": regions["moving"][1],
        "first_gap_generated": float(gaps[:, 0].mean()),
        "second_gap_generated": float(gaps[:, 1].mean()),
        # > 1: the first generated frame is farther from y_a than the second (an artifact).
        "first_frame_excess": float(gaps[:, 0].mean() / max(gaps[:, 1].mean(), 1e-12)),
        "first_frame_excess_real": float(real_gaps[:, 0].mean() /
                                         max(real_gaps[:, 1].mean(), 1e-12)),
        "colour_drift_generated": float(colour_drift(generated).mean()),
        "colour_drift_real": float(colour_drift(real).mean()),
    }
