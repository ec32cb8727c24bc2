"""Fréchet distance between real and generated videos on feature vectors (FID, Heusel et al.
2017), from mergeable moments: the count, the sum and the sum of outer products of the features.

The Evaluator uses the B.3 classifier's penultimate features ("classifier FID": Kinetics-pretrained
I3D / ResNeXt weights cannot be downloaded here). `amc-tf evaluate --feature-extractor PATH` runs a
SavedModel a user supplies instead (e.g. an I3D exported by the user) through the same code, which
then gives the usual video FID.
"""

import dataclasses
import warnings

import numpy as np


@dataclasses.dataclass
class FeatureMoments:
    """Sufficient statistics of a set of feature vectors; merges exactly."""
    count: float = 0.0
    total: np.ndarray = None        # sum of x, (F,)
    outer: np.ndarray = None        # sum of x x^T, (F, F)

    def add(self, features):
        x = np.asarray(features, np.float64)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2:
            raise ValueError(f"features must be (N, F), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("features hold NaN or Inf")
        if self.total is None:
            self.total = np.zeros(x.shape[1])
            self.outer = np.zeros((x.shape[1], x.shape[1]))
        elif self.total.shape[0] != x.shape[1]:
            raise ValueError(f"got {x.shape[1]} features after {self.total.shape[0]}")
        self.count += x.shape[0]
        self.total += x.sum(axis=0)
        self.outer += x.T @ x
        return self

    def merge(self, other):
        if other.total is None:
            return self
        if self.total is None:
            self.total, self.outer = np.zeros_like(other.total), np.zeros_like(other.outer)
        self.count += other.count
        self.total = self.total + other.total
        self.outer = self.outer + other.outer
        return self

    def mean_and_covariance(self):
        """(mu, sigma) with the unbiased covariance (N - 1); sigma is 0 for a single vector."""
        if not self.count:
            raise ValueError("no features: nothing to take moments of")
        mean = self.total / self.count
        scatter = self.outer - self.count * np.outer(mean, mean)
        cov = scatter / max(self.count - 1.0, 1.0)
        return mean, (cov + cov.T) / 2.0


def frechet_distance(mean_a, cov_a, mean_b, cov_b):
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)); >= 0, 0 for equal Gaussians."""
    from scipy import linalg
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    with warnings.catch_warnings():
        # Few videos (a class slice) give singular covariances: handled below, not an error.
        warnings.simplefilter("ignore")
        root, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.all(np.isfinite(root)):
        # Singular product (few videos, rank-deficient covariances): regularise as is usual.
        eps = 1e-6 * np.eye(cov_a.shape[0])
        root = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    root = np.real(root)
    diff = mean_a - mean_b
    value = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))
    return max(value, 0.0)


def moments_distance(real, generated):
    """Fréchet distance of two FeatureMoments; NaN when either set has no vector."""
    if not real.count or not generated.count:
        return float("nan")
    return frechet_distance(*real.mean_and_covariance(), *generated.mean_and_covariance())
