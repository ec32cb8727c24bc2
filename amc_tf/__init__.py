"""amc_tf: AMC-GAN, "Video Prediction with Appearance and Motion Conditions" (ICML 2018).

The library: `data` (synthetic datasets, adapters, Beam preprocessing), `models` (generator,
discriminators, ConvLSTM cell, motion classifier), `losses`, `metrics`, `training`, `config`.
"""

__version__ = "0.1.0"
