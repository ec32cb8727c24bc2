"""AMC-GAN (Jang, Kim, Song, ICML 2018) as a model family.

    config          AMCConfig, the presets (paper-mug, paper-natops, cpu, test), Table 4 ablations
    generator       G (appendix A.1)
    conditions      G's inputs from the conditions, Table 4's ablations applied
    discriminators  D_a and D_m (A.2, A.3)
    model           AMCGAN: the three networks with Algorithm 1 as `train_step`
"""

from amc_tf.models.amc_gan import config as amc_config
from amc_tf.models.family import ModelFamily

WARMUP_PHASE = "reconstruction_warmup"
GAN_PHASE = "algorithm_1"


class AMCGANFamily(ModelFamily):
    name = "amc-gan"
    title = "AMC-GAN: Video Prediction with Appearance and Motion Conditions (ICML 2018)"
    presets = amc_config.PRESETS
    uses_appearance = True
    uses_velocity = True                      # y^v_m, sampled from training clips (§3.1)
    ablations = tuple(amc_config.ABLATIONS)
    config_module = amc_config
    config_class = amc_config.AMCConfig
    model_class = "amc_tf.models.amc_gan.model:AMCGAN"
    networks_module = "amc_tf.models.amc_gan.generator"
    # The ConvLSTMs pass their weights from step to step (ConvLSTMCell.step_weights) so the
    # backward sums the steps' weight gradients as it goes. Grappler's arithmetic optimizer
    # folds that chain of sums back into one AddN over all steps, which holds every step's
    # gradient at once: at paper-natops 4.4 instead of 5.9 GiB of tensors at the step's peak,
    # for the same step time (docs/measurements.md).
    graph_optimizer_options = {"arithmetic_optimization": False}

    def training_phases(self, config):
        # Not in the paper (0 at the paper presets): G-only reconstruction steps first.
        warmup = config.reconstruction_warmup_steps
        return ([(WARMUP_PHASE, warmup)] if warmup else []) + [(GAN_PHASE, None)]

    def enter_phase(self, model, phase):
        model.reconstruction_warmup = phase == WARMUP_PHASE

    def generate(self, generator, conditions, config, training=False):
        from keras import ops

        from amc_tf.models.amc_gan.conditions import generator_inputs
        # Table 4's ablations zero the removed condition here as in training.
        frames = generator(generator_inputs(conditions, config), training=training)
        appearance = ops.cast(conditions["appearance"], frames.dtype)
        return ops.concatenate([appearance[:, None], frames], axis=1)


FAMILY = AMCGANFamily()
