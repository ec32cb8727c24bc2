"""TFMA metrics for generated videos: Inception Score, H(y) and H(y|v) (TwoStreamVAN Eq. 8-11).

They read the model's class probabilities (the `probabilities` output of the `classify_generated`
signature) and are configured in an EvalConfig as
  tfma.MetricConfig(class_name="InceptionScore", module="amc_tf.metrics.tfma_metrics")
(likewise "InterEntropy" for H(y), "IntraEntropy" for H(y|v)). They slice like any TFMA metric.
"""

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

from amc_tf.metrics.class_distribution import ClassDistributionStats

INCEPTION_SCORE_NAME = "inception_score"
INTER_ENTROPY_NAME = "inter_entropy_h_y"
INTRA_ENTROPY_NAME = "intra_entropy_h_y_given_v"


class _ClassDistributionCombiner(beam.CombineFn):
    """Accumulates ClassDistributionStats from each example's predicted probabilities."""

    def __init__(self, metric_key, eval_config, example_weighted, statistic):
        self._metric_key = metric_key
        self._eval_config = eval_config
        self._example_weighted = example_weighted
        self._statistic = statistic

    def create_accumulator(self):
        return ClassDistributionStats()

    def add_input(self, accumulator, element):
        for _, prediction, example_weight in metric_util.to_label_prediction_example_weight(
                element, eval_config=self._eval_config,
                model_name=self._metric_key.model_name,
                output_name=self._metric_key.output_name,
                example_weighted=self._example_weighted, flatten=False, squeeze=False,
                allow_none=True):
            probabilities = np.asarray(prediction, np.float64).reshape(-1)
            accumulator.add(probabilities, weight=float(metric_util.safe_to_scalar(
                example_weight)))
        return accumulator

    def merge_accumulators(self, accumulators):
        accumulators = iter(accumulators)
        result = next(accumulators)
        for accumulator in accumulators:
            result.merge(accumulator)
        return result

    def extract_output(self, accumulator):
        return {self._metric_key: getattr(accumulator, self._statistic)()}


def _computations_for(statistic):
    def computations(name=None, eval_config=None, model_name="", output_name="",
                     example_weighted=False, sub_key=None, aggregation_type=None,
                     class_weights=None, **unused):
        del sub_key, aggregation_type, class_weights, unused
        key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                     example_weighted=example_weighted)
        return [metric_types.MetricComputation(
            keys=[key], preprocessors=None,
            combiner=_ClassDistributionCombiner(key, eval_config, example_weighted, statistic))]
    return computations


class InceptionScore(metric_types.Metric):
    """exp(E_v KL(p(y|v) || p(y))): realism and diversity of generated videos (higher better)."""

    def __init__(self, name=INCEPTION_SCORE_NAME):
        super().__init__(metric_util.merge_per_key_computations(
            _computations_for("inception_score")), name=name)


class InterEntropy(metric_types.Metric):
    """H(y): entropy of the marginal predicted class distribution (diversity, higher better)."""

    def __init__(self, name=INTER_ENTROPY_NAME):
        super().__init__(metric_util.merge_per_key_computations(
            _computations_for("inter_entropy")), name=name)


class IntraEntropy(metric_types.Metric):
    """Mean H(y|v): classifier uncertainty per video (realism, lower better)."""

    def __init__(self, name=INTRA_ENTROPY_NAME):
        super().__init__(metric_util.merge_per_key_computations(
            _computations_for("intra_entropy")), name=name)


metric_types.register_metric(InceptionScore)
metric_types.register_metric(InterEntropy)
metric_types.register_metric(IntraEntropy)
