"""amc_app: the top layer. The umbrella `amc-tf` command line and the main job (`amc-tf demo`),
which drive the core library (amc_tf), the pipeline and the server together. Nothing imports it.
"""
