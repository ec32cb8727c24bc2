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
    parser.add_argument("--debug", action="store_true",
                        help="show the whole traceback of a failure (amc-tf --debug COMMAND ...)")
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except Exception as e:  # noqa: BLE001  one line for the user; --debug for the developer
        if args.debug:
            raise
        print(f"amc-tf {args.command}: error: {describe(e)} (amc-tf --debug {args.command} "
              f"... shows the traceback)", file=sys.stderr, flush=True)
        return 1


def describe(error):
    """One line: what failed and where (the file an OSError names, the first line of the
    message; a TensorFlow error's message without its op context)."""
    if isinstance(error, OSError) and error.filename:
        reason = error.strerror or str(error)
        return f"{error.filename}: {reason}"
    if callable(getattr(error, "code", None)) and callable(getattr(error, "details", None)):
        # A gRPC call's failure: its status and the server's (or channel's) words.
        return f"the model server answered {error.code().name}: {error.details()}"
    message = getattr(error, "message", None) or str(error)
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


if __name__ == "__main__":
    sys.exit(main())
