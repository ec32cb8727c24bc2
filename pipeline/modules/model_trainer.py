"""Trainer module: a model family (custom_config "model", default AMC-GAN) under
MirroredStrategy (MultiWorkerMirroredStrategy on a multi-replica Vertex job: every replica
trains, the chief exports), exported for TF Serving + TFMA.

The export holds the serving signatures the family's contract names, the velocity bank of the
training clips (§3.1, families with velocities) and the `classify_generated` evaluation
signature, which runs the frozen classifier from `base_model` (the classifier Trainer's output)
on generated videos. Everything is read and written through tf.io.gfile (gs:// on Vertex).
"""

import posixpath

from pipeline.modules import common


def run_fn(fn_args):
    strategy = common.distribution_strategy()      # before any TensorFlow op (multi-worker)
    from amc_tf.training import train
    from serving.export import export_serving_model

    family, config, class_names, _ = common.trainer_setup(fn_args)
    if not fn_args.base_model:
        raise ValueError("the model Trainer needs the judges (classifier Trainer) as base_model")
    classifier, keypoint_judge, judge_metrics = train.load_judges(fn_args.base_model)
    train_pattern = common.split_pattern(fn_args.train_files, "train")
    model = train.train_model(
        family, config, train_pattern, common.split_pattern(fn_args.eval_files, "eval"),
        fn_args.model_run_dir, steps=fn_args.train_steps, strategy=strategy, resume=True,
        log_dir=posixpath.join(fn_args.model_run_dir, "logs"))
    if not common.finish_worker(fn_args, strategy):
        return
    bank = train.build_velocity_bank(train_pattern, config) if family.uses_velocity else None
    export_serving_model(family, family.generator(model), classifier, config, class_names,
                         fn_args.serving_model_dir, velocity_bank=bank,
                         keypoint_judge=keypoint_judge, judge_metrics=judge_metrics)
