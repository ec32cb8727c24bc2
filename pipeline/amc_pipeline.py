"""The TFX pipeline: one function builds the whole DAG from parameters (no globals), for any model
family (amc_tf.models.family)."""

from typing import Any, Dict, List, Optional

from pipeline import configs


def build_eval_config(ratio_threshold: Optional[float],
                      real_accuracy_threshold: Optional[float],
                      change_tolerance: Optional[float], uses_appearance: bool = True,
                      keypoint_judge: bool = True):
    """EvalConfig of the metric suite (amc_tf/metrics/suite.py) over the evaluation signature.

    The model's `classify_generated` signature runs the evaluation protocol on each eval clip
    (amc_tf/evaluation.py) and returns the judges' outputs; every suite metric is computed
    overall and per class. Blessing is gated on the overall slice only (per-class slices are
    reported, not gated: a plain `threshold` would apply to every slice):
      accuracy_ratio >= ratio_threshold and not lower than the baseline's by more than
        change_tolerance: generated accuracy relative to the judge's real-clip accuracy;
      real_accuracy >= real_accuracy_threshold: a weak judge cannot bless a weak generator.
    A None bound is no gate (the `test` preset gates only on example_count >= 1). A NaN ratio
    (a judge at 0 % on real clips) fails any ratio gate.
    SSIM / PSNR are left out for families without an appearance input (not applicable).
    """
    from tensorflow_model_analysis.proto import config_pb2 as tfma

    from amc_tf import evaluation
    from amc_tf.metrics import suite
    from amc_tf.metrics.tfma_metrics import METRIC_CLASSES

    def gated(value_bound=None, change_tolerance=None):
        threshold = tfma.MetricThreshold()
        if value_bound is not None:
            threshold.value_threshold.CopyFrom(tfma.GenericValueThreshold(
                lower_bound={"value": value_bound}))
        if change_tolerance is not None:
            # Blessed only if not worse than the last blessed model by more than this.
            threshold.change_threshold.CopyFrom(tfma.GenericChangeThreshold(
                direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                absolute={"value": -change_tolerance}))
        if value_bound is None and change_tolerance is None:
            return []
        return [tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()],
                                             threshold=threshold)]

    ratio_gate = gated(ratio_threshold, change_tolerance)
    judge_gate = gated(real_accuracy_threshold)
    applicable = suite.applicable_metrics(
        evaluation.output_names(uses_appearance, keypoint_judge))
    custom = "amc_tf.metrics.tfma_metrics"
    # Every run is gated on having evaluated at least one clip: TFX blesses nothing without a
    # threshold, and the `test` preset has no other gate.
    metrics = [tfma.MetricConfig(class_name="ExampleCount", per_slice_thresholds=gated(1))]
    for class_name, metric in METRIC_CLASSES.items():
        if metric not in applicable:
            continue
        config = tfma.MetricConfig(class_name=class_name, module=custom)
        if metric == suite.ACCURACY_RATIO:
            config.per_slice_thresholds.extend(ratio_gate)
        elif metric == suite.REAL_ACCURACY:
            config.per_slice_thresholds.extend(judge_gate)
        metrics.append(config)
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name=configs.EVAL_SIGNATURE,
                                    label_key=configs.EVAL_LABEL_KEY,
                                    prediction_key=configs.EVAL_PREDICTION_KEY)],
        slicing_specs=[tfma.SlicingSpec(),
                       tfma.SlicingSpec(feature_keys=[configs.EVAL_LABEL_KEY])],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)])


def create_pipeline(
        pipeline_name: str,
        pipeline_root: str,
        raw_data_path: str,
        dataset: str,
        model: str,
        preset: str,
        classifier_run_fn: str,
        model_run_fn: str,
        classifier_train_steps: int,
        model_train_steps: int,
        eval_ratio_threshold: Optional[float],
        eval_real_accuracy_threshold: Optional[float],
        eval_change_tolerance: Optional[float],
        serving_model_dir: str,
        schema_path: str,
        example_gen_config: Optional[Dict[str, Any]] = None,
        metadata_connection_config=None,
        beam_pipeline_args: Optional[List[str]] = None,
        vertex_training_args: Optional[Dict[str, Any]] = None,
        vertex_region: Optional[str] = None,
        enable_cache: bool = False):
    """Video ExampleGen → validation → classifier and model Trainers → Evaluator → Pusher.

    Args:
      raw_data_path: raw clips in the layout of the `dataset` adapter (`amc-tf synth` writes it).
      dataset: a dataset style of `amc_tf.data.datasets` ("gestures", "faces").
      model: a model family of `amc_tf.models` ("amc-gan").
      preset: the family's preset, handed to both Trainers. The class names and the dataset
        style reach the Trainers through ExampleGen's output, not through the pipeline.
      classifier_run_fn / model_run_fn: Trainer entry points, as module paths.
      example_gen_config: `VideoExampleGen` custom_config (e.g. augment_copies, num_classes).
      serving_model_dir: Pusher's base directory; versions land in `<dir>/<version>/`.
      vertex_training_args: when given, the model Trainer runs as a Vertex AI custom job with
        these worker_pool_specs (GPU machine) instead of in-process.
    """
    from tfx import v1 as tfx

    from amc_tf.data.example_gen import VideoExampleGen

    components = []

    # Beam: decode raw clips, apply the B.1 rules and augmentation, split train/eval by subject.
    example_gen = VideoExampleGen(input_base=raw_data_path, dataset=dataset,
                                  custom_config=dict(example_gen_config or {}))
    components.append(example_gen)

    # Dataset statistics, checked against the checked-in schema of preprocessed clips.
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    components += [statistics_gen, schema_gen, example_validator]

    from amc_tf.models import get_family
    family = get_family(model)
    family.config(preset)  # an unknown model or preset fails here, not in the run
    trainer_config = {"model": model, "preset": preset}

    # The judges, trained on real clips: the 3D-CNN motion classifier (B.3) and B.4's keypoint
    # detector + heatmap classifier.
    classifier_trainer = tfx.components.Trainer(
        run_fn=classifier_run_fn,
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(num_steps=classifier_train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=0),
        custom_config=trainer_config,
    ).with_id("classifier_trainer")
    components.append(classifier_trainer)

    # The model family (AMC-GAN: Algorithm 1) under MirroredStrategy; exports the serving +
    # evaluation signatures with the frozen classifier (handed over as base_model) inside.
    model_args = dict(
        run_fn=model_run_fn,
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        base_model=classifier_trainer.outputs["model"],
        train_args=tfx.proto.TrainArgs(num_steps=model_train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=0),
    )
    if vertex_training_args is not None:
        from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_executor
        model_trainer = tfx.extensions.google_cloud_ai_platform.Trainer(
            custom_config={
                **trainer_config,
                vertex_executor.ENABLE_VERTEX_KEY: True,
                vertex_executor.VERTEX_REGION_KEY: vertex_region,
                vertex_executor.TRAINING_ARGS_KEY: vertex_training_args,
            }, **model_args)
    else:
        model_trainer = tfx.components.Trainer(custom_config=trainer_config, **model_args)
    model_trainer = model_trainer.with_id("model_trainer")
    components.append(model_trainer)

    # The last blessed model, the baseline of the change threshold.
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    components.append(model_resolver)

    # The metric suite in TFMA: the judges on generated and real videos, SSIM/PSNR, FID, B.4.
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=model_trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        schema=schema_gen.outputs["schema"],
        eval_config=build_eval_config(eval_ratio_threshold, eval_real_accuracy_threshold,
                                      eval_change_tolerance, family.uses_appearance))
    components.append(evaluator)

    # TF Serving layout <serving_model_dir>/<version>/, only when blessed.
    pusher = tfx.components.Pusher(
        model=model_trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)))
    components.append(pusher)

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )
