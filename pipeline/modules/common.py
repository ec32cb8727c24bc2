"""What both Trainer module files need: the preset for the data, the split file patterns."""


def config_from_custom_config(custom_config):
    """The AMCConfig for the Trainer's preset, sized to the dataset's classes and keypoints."""
    from amc_tf import config as amc_config
    from amc_tf.data.features import NUM_KEYPOINTS
    for key in ("preset", "dataset", "num_classes"):
        if key not in (custom_config or {}):
            raise ValueError(f"Trainer custom_config lacks {key!r}: got {custom_config}")
    dataset = custom_config["dataset"]
    if dataset not in NUM_KEYPOINTS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(NUM_KEYPOINTS)}")
    return amc_config.get_preset(custom_config["preset"],
                                 num_classes=int(custom_config["num_classes"]),
                                 num_keypoints=NUM_KEYPOINTS[dataset])


def split_pattern(files, split):
    """The one file pattern TFX gives for a split (e.g. `<examples>/Split-train/*`)."""
    if not files:
        raise ValueError(f"the Trainer received no {split} files")
    if len(files) != 1:
        raise ValueError(f"expected one {split} file pattern, got {files}")
    return files[0]


def distribution_strategy():
    """MirroredStrategy over the local GPUs (or the CPU): losses scale by the global batch."""
    import tensorflow as tf
    return tf.distribute.MirroredStrategy()
