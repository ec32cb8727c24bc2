"""amc_tf.training: the API the TFX Trainer modules and `amc-tf train` share, for every family.

    train.train_model(family, config, train_pattern, eval_pattern, out_dir, steps, strategy,
                      resume=True, log_dir=None)
    train.train_classifier(config, train_pattern, eval_pattern, out_dir, steps, strategy)
    train.build_velocity_bank(file_pattern, config)
    evaluate.generated_video_accuracy(family, generator, classifier, eval_pattern, config, bank)
    files   the names of what training writes, and gfile helpers (no TensorFlow at import)

Import the submodules (`from amc_tf.training import train`): this package imports nothing, so
`amc-tf train --help` starts without TensorFlow.
"""
