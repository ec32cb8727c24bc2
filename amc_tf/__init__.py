"""amc_tf: conditional video generation (AMC-GAN, ICML 2018, and the model families after it).

The core library: `data` (dataset styles, synthetic datasets, adapters, Beam preprocessing),
`models` (the model-family contract, `models.amc_gan`, the B.3 motion classifier), `inputs` (clip
-> model inputs), `inference` (generation, generate-then-classify), `losses`, `metrics`,
`training`. It never imports `serving`, `pipeline` or `amc_app`.
"""

import os

# TensorFlow turns its oneDNN CPU kernels on by default only on some x86 CPUs. Without them (as
# on the AMD EPYC development machine) the Eigen fallbacks are far slower: B.3's conv3d train step
# 2.7 s instead of 0.035 s, AMC-GAN's cpu-preset step 2.4 s instead of 1.3 s (docs/
# measurements.md). Read when TensorFlow loads, so set on import of amc_tf; =0 opts out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
