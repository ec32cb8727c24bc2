"""Multi-scale motion fusion (Sec. 3.2, Eqs. 1-2, Fig. 3) with separable per-pixel kernels
(appendix A.1, Fig. 10).

At a scale, every location (a, b) of the content layer h_c (batch, H, W, d) gets its own n x n
kernel K(a, b) = v(a, b) h(a, b)^T, the outer product of a vertical and a horizontal n-vector
(unconstrained), applied to the n x n patch around (a, b) (replication padding n // 2):

    h~_c[a, b, c] = sum_ij h_c[a + i - n//2, b + j - n//2, c] v[a, b, i] h[a, b, j]     (Eq. 1)
    h^_c = M * h~_c + (1 - M) * h_c                                                       (Eq. 2)
"""

import tensorflow as tf


def replicate_pad(x, pad):
    """(batch, H, W, C) padded by `pad` on each side of H and W with the edge values (edge
    slices tiled and concatenated: a cheap gradient, unlike a gather)."""
    if pad == 0:
        return x
    x = tf.concat([tf.tile(x[:, :1], [1, pad, 1, 1]), x,
                   tf.tile(x[:, -1:], [1, pad, 1, 1])], axis=1)
    return tf.concat([tf.tile(x[:, :, :1], [1, 1, pad, 1]), x,
                      tf.tile(x[:, :, -1:], [1, 1, pad, 1])], axis=2)


def separable_convolution(features, vertical, horizontal):
    """Eq. (1): the spatially-adaptive convolution of `features` (batch, H, W, C) with per-pixel
    separable kernels `vertical`, `horizontal` (batch, H, W, n): (batch, H, W, C)."""
    n = vertical.shape[-1]
    shape = tf.shape(features)
    channels = features.shape[-1]
    patches = tf.image.extract_patches(replicate_pad(features, n // 2), sizes=[1, n, n, 1],
                                       strides=[1, 1, 1, 1], rates=[1, 1, 1, 1],
                                       padding="VALID")
    # extract_patches flattens each patch as (row i, column j, channel c).
    patches = tf.reshape(patches, tf.stack([shape[0], shape[1], shape[2], n, n, channels]))
    # K(a, b) = v(a, b) h(a, b)^T, then Eq. (1) as one contraction over the window.
    kernel = tf.cast(vertical, features.dtype)[..., :, None] * \
        tf.cast(horizontal, features.dtype)[..., None, :]
    return tf.einsum("bhwijc,bhwij->bhwc", patches, kernel)


def fuse(features, vertical, horizontal, mask):
    """Eq. (2): the content layer with the motion fused where the mask (batch, H, W, 1) says."""
    mask = tf.cast(mask, features.dtype)
    return mask * separable_convolution(features, vertical, horizontal) + \
        (1.0 - mask) * features
