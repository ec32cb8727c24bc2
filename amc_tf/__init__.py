"""amc_tf: conditional video generation (AMC-GAN, ICML 2018, and the model families after it).

The core library: `data` (dataset styles, synthetic datasets, adapters, Beam preprocessing),
`models` (the model-family contract, `models.amc_gan`, the B.3 motion classifier), `inputs` (clip
-> model inputs), `inference` (generation, generate-then-classify), `losses`, `metrics`,
`training`. It never imports `serving`, `pipeline` or `amc_app`.
"""

__version__ = "0.1.0"
