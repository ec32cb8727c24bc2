"""amc_tf.models: the model families (one subpackage each) and the networks they share.

    family      the ModelFamily contract
    registry    the registry of families (`FAMILIES`, `get_family`, `family_names`)
    amc_gan     AMC-GAN (Jang, Kim, Song, ICML 2018): presets, generator, D_a, D_m, AMCGAN
    imaginator  ImaGINator (Wang et al., WACV 2020): presets, G, D_V, D_I, Imaginator
    twostreamvan  TwoStreamVAN (Sun et al., WACV 2020): content / motion streams, fusion, curriculum
    g3an        G3AN (Wang et al., CVPR 2020), class-conditional: presets, G3 blocks, F-SA, D_V,
                G3an
    image_discriminator  the SN image discriminator D_I (ImaGINator, G3AN)
    family_config, common   what the families share: the judge's sizes and the config round
                trip; network and adversarial-model bases
    classifier  the B.3 3D-CNN motion classifier: the judge of every family's videos
    convlstm    the ConvLSTM cell
    spectral_norm  spectrally normalised (transposed) convolutions (ImaGINator, G3AN)
    saving      `.keras` save / load

Importing this package does not import TensorFlow (the CLI lists the families without it).
"""

from amc_tf.models.family import ModelFamily, family_names, get_family

__all__ = ["ModelFamily", "family_names", "get_family"]
