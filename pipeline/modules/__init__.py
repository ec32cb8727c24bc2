"""TFX Trainer entry points (`run_fn`) for the motion classifier and AMC-GAN."""
