"""amc_tf.models."""
