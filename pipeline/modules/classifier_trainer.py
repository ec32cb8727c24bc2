"""Trainer module: the evaluation's judges, trained on real clips: the 3D-CNN motion classifier
(appendix B.3) and B.4's keypoint detector + heatmap classifier.

Its model artifact is the model Trainer's `base_model`: the frozen judges inside the evaluation
signature. Their own figures on the real eval clips are written next to them
(`Format-Serving/classifier_metrics.json`, `keypoint_judge_metrics.json`) and go into the
exported model's metadata. custom_config "keypoint_judge": false skips B.4's judge.
"""

from pipeline.modules import common


def run_fn(fn_args):
    strategy = common.distribution_strategy()      # before any TensorFlow op (multi-worker)
    from amc_tf.training import train

    _, config, _, style = common.trainer_setup(fn_args)
    train.train_judges(
        config,
        common.split_pattern(fn_args.train_files, "train"),
        common.split_pattern(fn_args.eval_files, "eval"),
        fn_args.serving_model_dir,
        classifier_steps=fn_args.train_steps,
        num_landmarks=style.num_landmarks,
        strategy=strategy,
        keypoint_judge=bool((fn_args.custom_config or {}).get("keypoint_judge", True)))
    common.finish_worker(fn_args, strategy)
