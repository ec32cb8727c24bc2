"""amc_tf.training: the API the TFX Trainer modules and `amc-tf train` share, for every family.

    train.train_model(family, config, train_pattern, eval_pattern, out_dir, steps, strategy,
                      resume=True, log_dir=None)
    train.train_classifier(config, train_pattern, eval_pattern, out_dir, steps, strategy)
    train.train_judges(config, ..., num_landmarks)   # B.3 classifier + B.4 keypoint judge
    train.load_judges(out_dir) -> (classifier, keypoint judge, judge_metrics)
    train.build_velocity_bank(file_pattern, config)
    evaluate.evaluate_generator(family, generator, classifier, eval_pattern, config,
                                class_names, bank, keypoint_judge)   # the metric suite
    keypoint_judge   B.4's keypoint detector and heatmap classifier
    files   the names of what training writes, and gfile helpers (no TensorFlow at import)

Import the submodules (`from amc_tf.training import train`): this package imports nothing, so
`amc-tf train --help` starts without TensorFlow.
"""
