"""SSIM and PSNR of generated videos against the real clip, as ImaGINator reports them (seed 002,
PEERS.md): SSIM per frame on [0, 1] images with an 11x11 Gaussian window, sigma 1.5 (k1 0.01,
k2 0.03: `tf.image.ssim`'s defaults, the reference formulation), averaged over frames; PSNR from
the MSE in 0-255, 10 log10(255^2 / MSE), per frame and averaged (`tf.image.psnr`).

Only frames 2..T count: frame 1 is y_a itself, copied into every generated video (§3.1).
"""

import tensorflow as tf

SSIM_FILTER_SIZE = 11
SSIM_FILTER_SIGMA = 1.5


def _frames(real_uint8, generated_uint8):
    real = tf.convert_to_tensor(real_uint8)
    generated = tf.convert_to_tensor(generated_uint8)
    if real.dtype != tf.uint8 or generated.dtype != tf.uint8:
        raise ValueError(f"SSIM/PSNR take uint8 videos (0-255); got {real.dtype.name} and "
                         f"{generated.dtype.name}")
    if real.shape.rank != 5 or real.shape[1:] != generated.shape[1:]:
        raise ValueError(f"SSIM/PSNR need two (B, T, H, W, 3) videos of one shape; got "
                         f"{real.shape} and {generated.shape}")
    if real.shape[1] is not None and real.shape[1] < 2:
        raise ValueError("SSIM/PSNR compare frames 2..T: the videos need at least 2 frames")
    return real[:, 1:], generated[:, 1:]


def video_ssim(real_uint8, generated_uint8):
    """Mean SSIM over frames 2..T of each video: float32 (B,), 1 for identical videos."""
    real, generated = _frames(real_uint8, generated_uint8)
    to_unit = lambda v: tf.cast(v, tf.float32) / 255.0
    ssim = tf.image.ssim(to_unit(real), to_unit(generated), max_val=1.0,
                         filter_size=SSIM_FILTER_SIZE, filter_sigma=SSIM_FILTER_SIGMA)
    return tf.reduce_mean(ssim, axis=1)


def video_psnr(real_uint8, generated_uint8):
    """Mean PSNR (dB) over frames 2..T of each video: float32 (B,); inf for identical videos."""
    real, generated = _frames(real_uint8, generated_uint8)
    psnr = tf.image.psnr(tf.cast(real, tf.float32), tf.cast(generated, tf.float32),
                         max_val=255.0)
    return tf.reduce_mean(psnr, axis=1)
