"""TFX pipeline for AMC-GAN: create_pipeline, runners, Trainer module files."""
