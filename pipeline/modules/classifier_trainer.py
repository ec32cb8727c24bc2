"""Trainer module: the 3D-CNN motion classifier (appendix B.3), trained on real clips.

Its model artifact is the model Trainer's `base_model`: the frozen judge inside the evaluation
signature. Real-clip accuracy on the eval split is written next to the model
(`Format-Serving/classifier_metrics.json`, by `training.train.train_classifier`).
"""

from pipeline.modules import common


def run_fn(fn_args):
    from amc_tf.training import train

    _, config, _ = common.trainer_setup(fn_args)
    train.train_classifier(
        config,
        common.split_pattern(fn_args.train_files, "train"),
        common.split_pattern(fn_args.eval_files, "eval"),
        fn_args.serving_model_dir,
        steps=fn_args.train_steps,
        strategy=common.distribution_strategy())
