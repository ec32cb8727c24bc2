"""Trainer module: AMC-GAN (Algorithm 1) under MirroredStrategy, exported for TF Serving + TFMA.

The export holds the serving signatures (`generate`, `generate_with_velocity`), the velocity bank
of the training clips (§3.1) and the `classify_generated` evaluation signature, which runs the
frozen classifier from `base_model` (the classifier Trainer's output) on generated videos.
"""

import os

from pipeline.modules import common


def run_fn(fn_args):
    from amc_tf import models, training
    from amc_tf.data import classes
    from serving.export import export_serving_model

    config = common.config_from_custom_config(fn_args.custom_config)
    if not fn_args.base_model:
        raise ValueError("the GAN Trainer needs the classifier model as base_model")
    classifier = models.load_classifier(fn_args.base_model)
    train_pattern = common.split_pattern(fn_args.train_files, "train")
    gan = training.train_gan(
        config, train_pattern, common.split_pattern(fn_args.eval_files, "eval"),
        os.path.join(fn_args.model_run_dir, "checkpoints"), steps=fn_args.train_steps,
        strategy=common.distribution_strategy(), resume=True,
        log_dir=os.path.join(fn_args.model_run_dir, "logs"))
    velocity_bank = training.build_velocity_bank(train_pattern, config)
    dataset = fn_args.custom_config["dataset"]
    export_serving_model(gan.generator, classifier, velocity_bank, config,
                         classes.class_names(dataset, config.num_classes),
                         fn_args.serving_model_dir)
