"""How a conditions dict becomes G's inputs, with Table 4's ablations applied: what training and
generation both call, kept apart from the networks (which never read an ablation flag) and from
the train step (generating imports no training code)."""

from keras import ops

from amc_tf.models.amc_gan.generator import NO_LABEL

GENERATOR_INPUTS = ("appearance", "motion_class", "velocity", "noise")


def generator_inputs(conditions, config):
    """G's inputs from a conditions dict, with the conditions Table 4's ablation removed set to
    zero: "No y_a" feeds a zero y_a, "No y_m" a zero y_m (no label, zero velocity). Whatever
    generates with a trained G goes through it, so G sees at generation what it saw in training."""
    inputs = {k: conditions[k] for k in GENERATOR_INPUTS}
    if not config.use_appearance:
        inputs["appearance"] = ops.zeros_like(inputs["appearance"])
    if not config.use_motion:
        inputs["motion_class"] = ops.full_like(inputs["motion_class"], NO_LABEL)
        inputs["velocity"] = ops.zeros_like(inputs["velocity"])
    return inputs
