"""TFMA metrics of the suite (amc_tf/metrics/suite.py), for the Evaluator.

Each reads the evaluation signature's per-clip outputs (the whole prediction dict, whatever
ModelSpec.prediction_key says) and the label `motion_class`, accumulates a `SuiteStats` and
reports one figure, so each can carry its own threshold and all of them slice and merge exactly.
Configured in an EvalConfig as
  tfma.MetricConfig(class_name="AccuracyRatio", module="amc_tf.metrics.tfma_metrics")
The class names are `METRIC_CLASSES`' keys.
"""

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

from amc_tf.metrics import suite


def _rows(value):
    """One example's output as a batch of one."""
    return np.asarray(value)[None]


def _of_model(value, model_name):
    """With a baseline, TFMA keys labels and predictions by model name ("candidate", ...)."""
    if model_name and isinstance(value, dict) and model_name in value:
        return value[model_name]
    return value


class _SuiteCombiner(beam.CombineFn):
    """Accumulates SuiteStats from each example's outputs; extracts one metric."""

    def __init__(self, metric_key, metric):
        self._metric_key = metric_key
        self._metric = metric
        self._model_name = metric_key.model_name

    def create_accumulator(self):
        return suite.SuiteStats()

    def add_input(self, accumulator, element):
        predictions = _of_model(element.predictions, self._model_name)
        if not isinstance(predictions, dict):
            raise ValueError(f"{self._metric} reads the evaluation signature's output dict "
                             f"({', '.join(suite.METRIC_OUTPUTS[self._metric])}); got a single "
                             f"tensor")
        label = metric_util.safe_to_scalar(_of_model(element.labels, self._model_name))
        outputs = {name: _rows(predictions[name])
                   for name in suite.METRIC_OUTPUTS[self._metric] if name in predictions}
        missing = set(suite.METRIC_OUTPUTS[self._metric]) - set(outputs)
        if missing:
            raise ValueError(f"metric {self._metric} needs the outputs {sorted(missing)}, which "
                             f"the model does not return (outputs: {sorted(predictions)})")
        weights = _of_model(element.example_weights, self._model_name)
        weight = metric_util.safe_to_scalar(weights) if weights is not None else 1.0
        if weight != 1.0:
            raise ValueError("the video metric suite does not take example weights")
        accumulator.add(outputs, [int(label)])
        return accumulator

    def merge_accumulators(self, accumulators):
        accumulators = iter(accumulators)
        result = next(accumulators)
        for accumulator in accumulators:
            result.merge(accumulator)
        return result

    def extract_output(self, accumulator):
        return {self._metric_key: accumulator.value(self._metric)}


def _suite_metric(class_name, metric):
    def computations(name=None, eval_config=None, model_name="", output_name="",
                     example_weighted=False, sub_key=None, aggregation_type=None,
                     class_weights=None, **unused):
        del eval_config, sub_key, aggregation_type, class_weights, unused
        key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                     example_weighted=example_weighted)
        return [metric_types.MetricComputation(keys=[key], preprocessors=None,
                                               combiner=_SuiteCombiner(key, metric))]

    def __init__(self, name=metric):
        metric_types.Metric.__init__(
            self, metric_util.merge_per_key_computations(computations), name=name)

    cls = type(class_name, (metric_types.Metric,), {
        "__init__": __init__, "__module__": __name__,
        "__doc__": f"{suite.DESCRIPTIONS[metric]} (metric `{metric}`)."})
    metric_types.register_metric(cls)
    return cls


# TFMA class name -> suite metric.
METRIC_CLASSES = {
    "GeneratedAccuracy": suite.ACCURACY,
    "RealAccuracy": suite.REAL_ACCURACY,
    "AccuracyRatio": suite.ACCURACY_RATIO,
    "InceptionScore": suite.INCEPTION_SCORE,
    "InterEntropy": suite.INTER_ENTROPY,
    "IntraEntropy": suite.INTRA_ENTROPY,
    "SSIM": suite.SSIM_METRIC,
    "PSNR": suite.PSNR_METRIC,
    "ClassifierFID": suite.CLASSIFIER_FID,
    "KeypointAccuracy": suite.KEYPOINT_ACCURACY,
    "RealKeypointAccuracy": suite.REAL_KEYPOINT_ACCURACY,
}
for _class_name, _metric in METRIC_CLASSES.items():
    globals()[_class_name] = _suite_metric(_class_name, _metric)
