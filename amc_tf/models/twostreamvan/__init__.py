"""TwoStreamVAN (Sun, Xu, Saenko, 2020) as a model family.

    config          TwoStreamVANConfig, the presets (paper-mug, cpu, test)
    fusion          the multi-scale motion fusion: per-pixel separable kernels and a mask (Eqs. 1-2)
    streams         E_c, G_c, E_m, G_m: the content and motion streams (Tables 4-5)
    generator       TwoStreamGenerator: both streams as one saveable network; image-conditioned
                    generation (Sec. 3.4 from an encoded y_a) and the paper's prior first frame
    discriminators  D_I (patch) and D_V (real/fake + class logits)
    model           TwoStreamVAN: six Adams and the curriculum (content / easier / harder steps,
                    scheduled sampling, KL ramp, D/G balancing) as `train_step`

docs/twostreamvan.md says where the implementation chooses and why.
"""

from amc_tf.models.family import ModelFamily
from amc_tf.models.twostreamvan import config as tsv_config


class TwoStreamVANFamily(ModelFamily):
    name = "twostreamvan"
    title = "TwoStreamVAN: Improving Motion Modeling in Video Generation (WACV 2020)"
    presets = tsv_config.PRESETS
    uses_appearance = True
    uses_velocity = False
    config_module = tsv_config
    config_class = tsv_config.TwoStreamVANConfig
    model_class = "amc_tf.models.twostreamvan.model:TwoStreamVAN"
    networks_module = "amc_tf.models.twostreamvan.generator"

    def noise_shape(self, config):
        """z_m of the T-1 generated frames, flattened step-major: ((T-1) * M,)."""
        return (config.noise_dim,)

    def generate(self, generator, conditions, config, training=False):
        # Frame 0 is y_a itself; frames 1..T-1 roll the motion stream forward from it.
        return generator({k: conditions[k] for k in ("appearance", "motion_class", "noise")},
                         training=training)


FAMILY = TwoStreamVANFamily()
