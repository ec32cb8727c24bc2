"""ImaGINator (Wang, Bilinski, Bremond, Dantcheva, WACV 2020) as a model family.

    config          ImaginatorConfig, the presets (paper-mug, paper-natops, cpu, test)
    spectral_norm   SpectralConv2D / SpectralConv3D (Miyato et al. 2018, σ in the gradient)
    generator       G (appendix A.1, Table 1): image encoder with skip maps, (1+2)D decoder
    discriminators  D_V (Table 3, class map after Conv1); D_I (Table 2) is the shared
                    amc_tf/models/image_discriminator.py
    model           Imaginator: the three networks with the authors' iteration as `train_step`

docs/imaginator.md says where the implementation chooses and why.
"""

from amc_tf.models.family import ModelFamily
from amc_tf.models.imaginator import config as imaginator_config


class ImaginatorFamily(ModelFamily):
    name = "imaginator"
    title = "ImaGINator: Conditional Spatio-Temporal GAN for Video Generation (WACV 2020)"
    presets = imaginator_config.PRESETS
    uses_appearance = True
    uses_velocity = False
    config_module = imaginator_config
    config_class = imaginator_config.ImaginatorConfig
    model_class = "amc_tf.models.imaginator.model:Imaginator"
    networks_module = "amc_tf.models.imaginator.generator"

    def generate(self, generator, conditions, config, training=False):
        from keras import ops

        from amc_tf.models.imaginator.generator import generator_inputs
        # G generates all T frames; frame 0 (trained towards the conditioning image by the L1
        # term) is replaced by y_a itself, as the contract wants.
        video = generator(generator_inputs(conditions), training=training)
        appearance = ops.cast(conditions["appearance"], video.dtype)
        return ops.concatenate([appearance[:, None], video[:, 1:]], axis=1)


FAMILY = ImaginatorFamily()
