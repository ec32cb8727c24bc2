"""amc_tf.metrics."""
