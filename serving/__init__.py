"""TF Serving export, gRPC server and client for AMC-GAN generation."""
