"""The one metric suite of every model family: what the evaluation signature returns per clip,
and the mergeable statistics that turn those outputs into the suite's figures.

The evaluation protocol (amc_tf/evaluation.py) returns, for each real eval clip, these outputs;
TFMA's Evaluator (amc_tf/metrics/tfma_metrics.py) and `amc-tf evaluate` both reduce them with
`SuiteStats`, so a figure means the same in the pipeline and on demand:

  accuracy            B.3 classifier on videos generated with velocities drawn from training clips
                      of the clip's class (§3.1, §4.1, Table 3)
  real_accuracy       the same classifier on the real clips: how far the judge itself can be trusted
  accuracy_ratio      accuracy / real_accuracy (the blessing gate)
  inception_score, inter_entropy_h_y, intra_entropy_h_y_given_v   TwoStreamVAN Eq. 8-11
  ssim, psnr          generation with the clip's own velocities vs the real clip, frames 2..T
                      (ImaGINator's definitions; not applicable without an appearance input)
  classifier_fid      Fréchet distance of real vs generated videos on the B.3 classifier's
                      penultimate features
  keypoint_accuracy, real_keypoint_accuracy   B.4: detected keypoints -> heatmaps -> 2D CNN
Each is exact over the eval set (sums, counts and feature moments merge).
"""

import dataclasses
import math

import numpy as np

from amc_tf.metrics.class_distribution import ClassDistributionStats
from amc_tf.metrics.frechet import FeatureMoments, moments_distance

# Per-clip outputs of the evaluation signature.
PROBABILITIES = "probabilities"                  # (C,) classifier on the generated video
PREDICTED_CLASS = "predicted_class"
REAL_PROBABILITIES = "real_probabilities"        # (C,) classifier on the real clip
GENERATED_FEATURES = "generated_features"        # (F,) penultimate features, generated video
REAL_FEATURES = "real_features"                  # (F,) the same, real clip
SSIM = "ssim"                                    # () own-velocity generation vs real clip
PSNR = "psnr"                                    # ()
KEYPOINT_PROBABILITIES = "keypoint_probabilities"            # (C,) B.4 on the generated video
REAL_KEYPOINT_PROBABILITIES = "real_keypoint_probabilities"  # (C,) B.4 on the real clip

# Metric names, in the order tables print them.
ACCURACY = "accuracy"
REAL_ACCURACY = "real_accuracy"
ACCURACY_RATIO = "accuracy_ratio"
INCEPTION_SCORE = "inception_score"
INTER_ENTROPY = "inter_entropy_h_y"
INTRA_ENTROPY = "intra_entropy_h_y_given_v"
SSIM_METRIC = "ssim"
PSNR_METRIC = "psnr"
CLASSIFIER_FID = "classifier_fid"
KEYPOINT_ACCURACY = "keypoint_accuracy"
REAL_KEYPOINT_ACCURACY = "real_keypoint_accuracy"
METRICS = (ACCURACY, REAL_ACCURACY, ACCURACY_RATIO, INCEPTION_SCORE, INTER_ENTROPY,
           INTRA_ENTROPY, SSIM_METRIC, PSNR_METRIC, CLASSIFIER_FID, KEYPOINT_ACCURACY,
           REAL_KEYPOINT_ACCURACY)
# The real-clip bound of the class-distribution figures (TwoStreamVAN's Table 2 "real" rows): the
# same statistics of the classifier's p(y|v) on the real clips. Reported beside a model's figures
# (`per_class_table`, `amc-tf compare`), never gated or sliced by the Evaluator.
REAL_INCEPTION_SCORE = "real_inception_score"
REAL_INTER_ENTROPY = "real_inter_entropy_h_y"
REAL_INTRA_ENTROPY = "real_intra_entropy_h_y_given_v"
REAL_BOUND = (REAL_INCEPTION_SCORE, REAL_INTER_ENTROPY, REAL_INTRA_ENTROPY)
# Metrics where a smaller value is better (the "worst class" is then the largest).
LOWER_IS_BETTER = (INTRA_ENTROPY, CLASSIFIER_FID)

# The outputs each metric reads: a metric whose outputs a model does not return is not applicable
# (families without an appearance input return no ssim / psnr).
METRIC_OUTPUTS = {
    ACCURACY: (PROBABILITIES,), REAL_ACCURACY: (REAL_PROBABILITIES,),
    ACCURACY_RATIO: (PROBABILITIES, REAL_PROBABILITIES),
    INCEPTION_SCORE: (PROBABILITIES,), INTER_ENTROPY: (PROBABILITIES,),
    INTRA_ENTROPY: (PROBABILITIES,), SSIM_METRIC: (SSIM,), PSNR_METRIC: (PSNR,),
    CLASSIFIER_FID: (GENERATED_FEATURES, REAL_FEATURES),
    KEYPOINT_ACCURACY: (KEYPOINT_PROBABILITIES,),
    REAL_KEYPOINT_ACCURACY: (REAL_KEYPOINT_PROBABILITIES,),
    REAL_INCEPTION_SCORE: (REAL_PROBABILITIES,), REAL_INTER_ENTROPY: (REAL_PROBABILITIES,),
    REAL_INTRA_ENTROPY: (REAL_PROBABILITIES,),
}

DESCRIPTIONS = {
    ACCURACY: "B.3 classifier accuracy on generated videos (sampled velocities)",
    REAL_ACCURACY: "B.3 classifier accuracy on the real clips",
    ACCURACY_RATIO: "generated / real accuracy",
    INCEPTION_SCORE: "Inception Score (classifier)",
    INTER_ENTROPY: "H(y), diversity",
    INTRA_ENTROPY: "H(y|v), lower is better",
    SSIM_METRIC: "SSIM, own velocities, frames 2..T",
    PSNR_METRIC: "PSNR dB, own velocities, frames 2..T",
    CLASSIFIER_FID: "Fréchet distance, B.3 penultimate features",
    KEYPOINT_ACCURACY: "B.4 keypoint-based accuracy, generated",
    REAL_KEYPOINT_ACCURACY: "B.4 keypoint-based accuracy, real",
    REAL_INCEPTION_SCORE: "Inception Score of the real clips (the bound)",
    REAL_INTER_ENTROPY: "H(y) of the real clips",
    REAL_INTRA_ENTROPY: "H(y|v) of the real clips",
}


def applicable(metric, outputs):
    """Whether `metric` can be computed from a model returning `outputs` (names)."""
    return all(name in outputs for name in METRIC_OUTPUTS[metric])


def applicable_metrics(outputs):
    """The suite's metrics, in table order, that a model returning `outputs` can have."""
    return [m for m in METRICS if applicable(m, outputs)]


def _hits(probabilities, labels):
    return int((np.argmax(probabilities, axis=-1) == labels).sum())


@dataclasses.dataclass
class SuiteStats:
    """Mergeable statistics of the suite over a set of eval clips."""
    count: int = 0
    hits: dict = dataclasses.field(default_factory=dict)       # output -> correct clips
    counts: dict = dataclasses.field(default_factory=dict)     # output -> clips seen
    sums: dict = dataclasses.field(default_factory=dict)       # ssim / psnr -> sum
    classes: ClassDistributionStats = dataclasses.field(default_factory=ClassDistributionStats)
    real_classes: ClassDistributionStats = dataclasses.field(
        default_factory=ClassDistributionStats)
    real_features: FeatureMoments = dataclasses.field(default_factory=FeatureMoments)
    generated_features: FeatureMoments = dataclasses.field(default_factory=FeatureMoments)

    def add(self, outputs, labels):
        """outputs: {name: array (B, ...)} (any subset of the outputs above); labels (B,)."""
        labels = np.asarray(labels).reshape(-1).astype(np.int64)
        n = labels.shape[0]
        for name, value in outputs.items():
            if np.shape(value)[:1] != (n,):
                raise ValueError(f"output {name!r} has {np.shape(value)[:1]} rows for {n} labels")
        self.count += n
        for name in (PROBABILITIES, REAL_PROBABILITIES, KEYPOINT_PROBABILITIES,
                     REAL_KEYPOINT_PROBABILITIES):
            if name in outputs:
                self.hits[name] = self.hits.get(name, 0) + _hits(outputs[name], labels)
                self.counts[name] = self.counts.get(name, 0) + n
        if PROBABILITIES in outputs:
            self.classes.add(outputs[PROBABILITIES])
        if REAL_PROBABILITIES in outputs:
            self.real_classes.add(outputs[REAL_PROBABILITIES])
        for name in (SSIM, PSNR):
            if name in outputs:
                self.sums[name] = self.sums.get(name, 0.0) + float(
                    np.sum(np.asarray(outputs[name], np.float64)))
                self.counts[name] = self.counts.get(name, 0) + n
        if GENERATED_FEATURES in outputs and REAL_FEATURES in outputs:
            self.generated_features.add(outputs[GENERATED_FEATURES])
            self.real_features.add(outputs[REAL_FEATURES])
        return self

    def merge(self, other):
        self.count += other.count
        for mine, theirs in ((self.hits, other.hits), (self.counts, other.counts),
                             (self.sums, other.sums)):
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0) + value
        self.classes.merge(other.classes)
        self.real_classes.merge(other.real_classes)
        self.real_features.merge(other.real_features)
        self.generated_features.merge(other.generated_features)
        return self

    def _accuracy(self, output):
        n = self.counts.get(output, 0)
        return self.hits[output] / n if n else float("nan")

    def _mean(self, output):
        n = self.counts.get(output, 0)
        return self.sums[output] / n if n else float("nan")

    def value(self, metric):
        """The metric's value; NaN when nothing it reads was seen."""
        if metric == ACCURACY:
            return self._accuracy(PROBABILITIES)
        if metric == REAL_ACCURACY:
            return self._accuracy(REAL_PROBABILITIES)
        if metric == ACCURACY_RATIO:
            real = self._accuracy(REAL_PROBABILITIES)
            return self._accuracy(PROBABILITIES) / real if real else float("nan")
        if metric == INCEPTION_SCORE:
            return self.classes.inception_score()
        if metric == INTER_ENTROPY:
            return self.classes.inter_entropy()
        if metric == INTRA_ENTROPY:
            return self.classes.intra_entropy()
        if metric == REAL_INCEPTION_SCORE:
            return self.real_classes.inception_score()
        if metric == REAL_INTER_ENTROPY:
            return self.real_classes.inter_entropy()
        if metric == REAL_INTRA_ENTROPY:
            return self.real_classes.intra_entropy()
        if metric == SSIM_METRIC:
            return self._mean(SSIM)
        if metric == PSNR_METRIC:
            return self._mean(PSNR)
        if metric == CLASSIFIER_FID:
            return moments_distance(self.real_features, self.generated_features)
        if metric == KEYPOINT_ACCURACY:
            return self._accuracy(KEYPOINT_PROBABILITIES)
        if metric == REAL_KEYPOINT_ACCURACY:
            return self._accuracy(REAL_KEYPOINT_PROBABILITIES)
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")

    def values(self, metrics=METRICS):
        return {m: self.value(m) for m in metrics}


def per_class_table(outputs, labels, class_names, metrics):
    """{"overall": {metric: value}, "<class name>": {...}} from whole-set outputs (numpy); the
    real-clip bound (REAL_BOUND) joins `metrics` where the real clips' probabilities are there."""
    labels = np.asarray(labels).reshape(-1)
    metrics = list(metrics) + [m for m in REAL_BOUND if m not in metrics and
                               applicable(m, outputs)]
    table = {"overall": SuiteStats().add(outputs, labels).values(metrics)}
    for c, name in enumerate(class_names):
        rows = labels == c
        if rows.any():
            table[name] = SuiteStats().add({k: np.asarray(v)[rows] for k, v in outputs.items()},
                                           labels[rows]).values(metrics)
    return table


def worst_class(table, metric):
    """(class name, value) of the class that scores worst on `metric`, ignoring NaN."""
    values = [(name, row[metric]) for name, row in table.items()
              if name != "overall" and row.get(metric) is not None
              and not math.isnan(row[metric])]
    if not values:
        return None, None
    pick = max if metric in LOWER_IS_BETTER else min
    return pick(values, key=lambda item: item[1])


NOT_APPLICABLE = "n/a"


def format_value(value):
    if value is None:
        return NOT_APPLICABLE
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"


def format_table(table, metrics=METRICS, judges=None):
    """The suite as text: one row per metric (overall, worst class); a metric the model cannot
    have (no appearance input: SSIM / PSNR; no keypoint judge exported) reads "n/a", never 0.

    table: {"overall": {...}, class: {...}} (`per_class_table`, or the Evaluator's slices by
    class name). judges: optional {name: value} of the judges' own figures on real clips.
    """
    overall = table.get("overall", {})
    width = max(len(m) for m in metrics) + 2
    lines = [f"{'metric':<{width}}{'overall':>10}   worst class", "-" * (width + 40)]
    for metric in metrics:
        value = overall.get(metric)
        if value is None:
            lines.append(f"{metric:<{width}}{NOT_APPLICABLE:>10}   (not applicable to this model)")
            continue
        name, worst = worst_class(table, metric)
        worst_text = f"{format_value(worst)} ({name})" if name is not None else "-"
        lines.append(f"{metric:<{width}}{format_value(value):>10}   {worst_text}")
    for name, value in (judges or {}).items():
        lines.append(f"judge: {name} = {format_value(value)}")
    return "\n".join(lines)
