"""`amc-tf`: one command line with a subcommand per job.

Each subcommand lives in the module that owns the job and exposes `register(subparsers)`; the
module must not import TensorFlow at import time, so `amc-tf --help` stays fast.
"""

import argparse
import importlib
import sys

# Modules that add subcommands, in help order.
SUBCOMMAND_MODULES = (
    "amc_tf.info",            # info
    "amc_tf.data.cli",        # synth, preprocess, contact-sheet
    "amc_tf.training.cli",    # train
    "pipeline.cli",           # pipeline run | compile-vertex | submit-vertex
    "serving.cli",            # serve, generate
    "amc_app.demo",           # demo
    "amc_app.compare",        # compare
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="amc-tf",
        description="AMC-GAN video prediction: data, training, TFX pipeline, TF Serving.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            # A subcommand module not written yet; any other import error is a real bug.
            if e.name == name or name.startswith(f"{e.name}."):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
