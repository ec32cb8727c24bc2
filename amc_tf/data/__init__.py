"""amc_tf.data."""
