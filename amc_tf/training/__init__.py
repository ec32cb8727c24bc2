"""amc_tf.training."""
