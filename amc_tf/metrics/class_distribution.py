"""Inception Score, H(y) and H(y|v) from a classifier's class probabilities.

Definitions of TwoStreamVAN (Sun et al. 2020, appendix, Eq. 8-11), with v a generated video and
p(y|v) the trained motion classifier's softmax:
  H(y)   = -sum_y p(y) log p(y),  p(y) = E_v p(y|v)      (Eq. 8-9, inter-entropy: diversity)
  H(y|v) = E_v [-sum_y p(y|v) log p(y|v)]                (Eq. 10, intra-entropy: realism)
  IS     = exp(E_v KL(p(y|v) || p(y))) = exp(H(y) - H(y|v))   (Eq. 11)
All three follow from (count, sum of p(y|v), sum of H(y|v)), so they stream and merge exactly.
"""

import dataclasses

import numpy as np

_EPS = 1e-12


def _entropy(p, axis=-1):
    p = np.asarray(p, dtype=np.float64)
    return -np.sum(p * np.log(np.clip(p, _EPS, 1.0)), axis=axis)


def _check_probabilities(probabilities):
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim == 1:
        p = p[None]
    if p.ndim != 2 or p.shape[-1] < 2:
        raise ValueError(f"probabilities must have shape (N, num_classes>=2), got {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("probabilities must be finite and non-negative")
    sums = p.sum(axis=-1)
    if not np.allclose(sums, 1.0, atol=1e-3):
        raise ValueError(f"probabilities must sum to 1 per row (got sums in "
                         f"[{sums.min():.4f}, {sums.max():.4f}]); pass softmax outputs")
    return p


@dataclasses.dataclass
class ClassDistributionStats:
    """Mergeable sufficient statistics of p(y|v) over a set of videos."""
    count: float = 0.0
    probability_sum: np.ndarray = None
    conditional_entropy_sum: float = 0.0

    def add(self, probabilities, weight=1.0):
        p = _check_probabilities(probabilities)
        if self.probability_sum is None:
            self.probability_sum = np.zeros(p.shape[-1], np.float64)
        elif self.probability_sum.shape[0] != p.shape[-1]:
            raise ValueError(f"got {p.shape[-1]} classes after {self.probability_sum.shape[0]}")
        self.count += weight * p.shape[0]
        self.probability_sum += weight * p.sum(axis=0)
        self.conditional_entropy_sum += weight * float(_entropy(p).sum())
        return self

    def merge(self, other):
        if other.probability_sum is None:
            return self
        if self.probability_sum is None:
            self.probability_sum = np.zeros_like(other.probability_sum)
        self.count += other.count
        self.probability_sum = self.probability_sum + other.probability_sum
        self.conditional_entropy_sum += other.conditional_entropy_sum
        return self

    def inter_entropy(self):
        """H(y), Eq. 8."""
        if not self.count:
            return float("nan")
        return float(_entropy(self.probability_sum / self.count))

    def intra_entropy(self):
        """Mean H(y|v), Eq. 10."""
        if not self.count:
            return float("nan")
        return self.conditional_entropy_sum / self.count

    def inception_score(self):
        """IS = exp(H(y) - E_v H(y|v)), Eq. 11."""
        if not self.count:
            return float("nan")
        return float(np.exp(self.inter_entropy() - self.intra_entropy()))


def inter_entropy(probabilities):
    return ClassDistributionStats().add(probabilities).inter_entropy()


def intra_entropy(probabilities):
    return ClassDistributionStats().add(probabilities).intra_entropy()


def inception_score(probabilities):
    return ClassDistributionStats().add(probabilities).inception_score()
