"""G3AN (Wang, Bilinski, Bremond, Dantcheva, CVPR 2020) as a model family, class-conditional.

    config          G3anConfig, the presets (paper, cpu, test) and ablations (unconditional,
                    no-fsa)
    attention       F-SA: SelfAttention along time (T-SA) or over space (S-SA), and the two
                    factorised (supplementary B)
    generator       G3Block and the three-stream generator G (supplementary A, Table 1)
    discriminators  the (2+1)D video discriminator D_V (D_I: amc_tf/models/image_discriminator.py)
    model           G3an: the three networks, a D step then a G step as `train_step`

G3AN generates from noise alone: no appearance (y_a) and no velocities. z is the flat
[z_a, z_m]; its class-conditional design (the one-hot to the motion stream and to D_V) is ours.
docs/g3an.md says where the implementation chooses and why.
"""

from amc_tf.models.family import ModelFamily
from amc_tf.models.g3an import config as g3an_config


class G3anFamily(ModelFamily):
    name = "g3an"
    title = ("G3AN: Disentangling Appearance and Motion for Video Generation (CVPR 2020), "
             "class-conditional")
    presets = g3an_config.PRESETS
    ablations = tuple(g3an_config.ABLATIONS)
    uses_appearance = False
    uses_velocity = False
    config_module = g3an_config
    config_class = g3an_config.G3anConfig
    model_class = "amc_tf.models.g3an.model:G3an"
    networks_module = "amc_tf.models.g3an.generator"

    def generate(self, generator, conditions, config, training=False):
        """G's whole video from the class and z = [z_a, z_m]; an appearance, if given, is not
        used (G3AN has none)."""
        from amc_tf.models.g3an.generator import generator_inputs
        return generator(generator_inputs(conditions), training=training)


FAMILY = G3anFamily()
