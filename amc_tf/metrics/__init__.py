"""Evaluation metrics: classifier-based video scores (IS, H(y), H(y|v)) and their TFMA metrics."""

from amc_tf.metrics.class_distribution import (ClassDistributionStats, inception_score,
                                              inter_entropy, intra_entropy)

__all__ = ["ClassDistributionStats", "inception_score", "inter_entropy", "intra_entropy"]
