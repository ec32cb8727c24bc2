"""AMC-GAN's loss terms as small pure functions; each returns one value per sample (batch,).

Per-sample values let the train step average over the *global* batch under tf.distribute.
"""

from keras import ops

EPSILON = 1e-12


def gram_matrix(features, kind="spatial"):
    """G^D_j(x) = ω_j(x)^T ω_j(x) / (N_j M_j)   # Eq. (2)

    features: (batch, T_j, H_j, W_j, C_j), the j-th layer of a discriminator over a video.
    kind "spatial" (Eq. (2) as printed): ω_j(x) is N_j x M_j with N_j = T_j C_j rows and
    M_j = H_j W_j columns, so G is (batch, M_j, M_j): how positions co-vary across filters.
    kind "channel" (the paper's rationale, "correlation patterns" of filter responses after
    Gatys et al.): ω_j(x) is C_j x T_j H_j W_j and G is (batch, C_j, C_j): which filters fire
    together, wherever they fire.
    """
    features = ops.cast(features, "float32")
    _, t, h, w, c = features.shape
    if kind == "spatial":
        omega = ops.reshape(ops.transpose(features, (0, 1, 4, 2, 3)), (-1, t * c, h * w))
    elif kind == "channel":
        # ω^T of the C x THW matrix, so the same product gives ω ω^T (C x C).
        omega = ops.reshape(features, (-1, t * h * w, c))
    else:
        raise ValueError(f"unknown Gram matrix kind {kind!r}: 'spatial' or 'channel'")
    return ops.einsum("bnm,bnk->bmk", omega, omega) / float(t * c * h * w)


def perceptual_distance(features_a, features_b, kind="spatial"):
    """d_j(x, x̂) = ||G^D_j(x) - G^D_j(x̂)||_F   # Eq. (1); (batch,)."""
    diff = gram_matrix(features_a, kind) - gram_matrix(features_b, kind)
    return ops.sqrt(ops.sum(ops.square(diff), axis=(1, 2)) + EPSILON)


def perceptual_distances(layers_a, layers_b, kind="spatial"):
    """[d_j for j = 1, 2] over the discriminator layers exposed for ranking."""
    return [perceptual_distance(a, b, kind) for a, b in zip(layers_a, layers_b)]


def ranking_loss(d_plus, d_minus, margin):
    """R(x|y, x̂|y, x̂|y') = Σ_j max(0, ρ - d⁻_j + d⁺_j)   # Eq. (3); (batch,)."""
    return sum(ops.maximum(0.0, margin - dm + dp) for dp, dm in zip(d_plus, d_minus))


def bce_with_logits(logits, target):
    """Binary cross-entropy of σ(logits) against a (smoothed) scalar target; mean over all but
    the batch axis. -[t log σ(l) + (1 - t) log(1 - σ(l))] computed stably."""
    logits = ops.cast(logits, "float32")
    per = ops.maximum(logits, 0.0) - logits * target + ops.log1p(ops.exp(-ops.abs(logits)))
    if len(per.shape) > 1:
        per = ops.mean(ops.reshape(per, (ops.shape(per)[0], -1)), axis=1)
    return per


def class_cross_entropy(class_logits, labels, num_classes, label_smoothing=0.0):
    """L_CE(y^l_m, ŷ^l_m) with label smoothing (Salimans et al., 2016)   # Eq. (7)."""
    target = ops.one_hot(ops.cast(labels, "int32"), num_classes)
    target = target * (1.0 - label_smoothing) + label_smoothing / num_classes
    log_probs = ops.log_softmax(ops.cast(class_logits, "float32"), axis=-1)
    return -ops.sum(target * log_probs, axis=-1)


def velocity_mse(velocity, predicted):
    """L_MSE(y^v_m, ŷ^v_m): mean squared error over time steps and coordinates   # Eq. (7)."""
    diff = ops.cast(velocity, "float32") - ops.cast(predicted, "float32")
    return ops.mean(ops.square(ops.reshape(diff, (ops.shape(diff)[0], -1))), axis=1)


def reconstruction_l1(video, generated):
    """||x|y - x̂|y||_1 over frames t = 2..T (mean absolute error per sample)   # Eq. (8)."""
    diff = ops.abs(ops.cast(video, "float32") - ops.cast(generated, "float32"))
    return ops.mean(ops.reshape(diff, (ops.shape(diff)[0], -1)), axis=1)


def motion_weighted_l1(video, generated, appearance):
    """L1 over frames t = 2..T weighted by how far each real pixel is from y_a (not in the paper).

    The weight m = mean_c |x_t - y_a| is large where the body moved (thin limbs cover a few
    percent of the frame, so plain L1 is mostly won by copying y_a); per sample
    Σ m |x - x̂| / Σ m, with m treated as a constant.
    """
    video = ops.cast(video, "float32")
    diff = ops.abs(video - ops.cast(generated, "float32"))
    weight = ops.mean(ops.abs(video - ops.cast(appearance, "float32")[:, None]), axis=-1,
                      keepdims=True)
    batch = ops.shape(diff)[0]
    num = ops.sum(ops.reshape(weight * diff, (batch, -1)), axis=1)
    den = ops.sum(ops.reshape(weight, (batch, -1)), axis=1) * diff.shape[-1]
    return num / (den + 1e-6)
