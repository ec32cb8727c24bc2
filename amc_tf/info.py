"""`amc-tf info`: the installed stack's versions and what this machine offers (CPUs, GPUs)."""

STACK_PACKAGES = ("tensorflow", "keras", "tfx", "tensorflow-model-analysis",
                  "tensorflow-data-validation", "ml-metadata", "tfx-bsl", "apache-beam",
                  "tensorflow-serving-api", "kfp", "protobuf", "numpy")


def stack_versions():
    """Installed versions of the core stack, by distribution name (None when missing)."""
    from importlib import metadata
    versions = {}
    for name in STACK_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run(args):
    for name, version in stack_versions().items():
        print(f"{name:28s} {version or 'NOT INSTALLED'}")
    if args.devices:
        import tensorflow as tf
        for device in tf.config.list_physical_devices():
            print(f"device: {device.device_type} {device.name}")
    return 0


def register(subparsers):
    p = subparsers.add_parser("info", help="print the stack's versions (and devices)")
    p.add_argument("--devices", action="store_true", help="also list TF devices (imports TF)")
    p.set_defaults(func=run)
