"""What both Trainer module files need: the family and its config sized to ExampleGen's output.

The class names and the dataset style travel as artifacts: ExampleGen writes them to
`summary.json` in its examples artifact, the Trainers read them there (never from a built-in list
or the raw directory).
"""

import posixpath


def split_pattern(files, split):
    """The one file pattern TFX gives for a split (e.g. `<examples>/Split-train/*`)."""
    if not files:
        raise ValueError(f"the Trainer received no {split} files")
    if len(files) != 1:
        raise ValueError(f"expected one {split} file pattern, got {files}")
    return files[0]


def examples_summary(fn_args):
    """ExampleGen's summary.json (dataset, class_names, counts) of the Trainer's examples."""
    from amc_tf.training import files
    examples_uri = posixpath.dirname(posixpath.dirname(split_pattern(fn_args.train_files,
                                                                     "train")))
    return files.read_examples_summary(examples_uri)


def trainer_setup(fn_args):
    """(family, config, class_names, dataset style) for the Trainer's custom_config
    {"model", "preset"}."""
    from amc_tf.data import datasets
    from amc_tf.models import get_family

    custom_config = fn_args.custom_config or {}
    for key in ("model", "preset"):
        if key not in custom_config:
            raise ValueError(f"Trainer custom_config lacks {key!r}: got {custom_config}")
    family = get_family(custom_config["model"])
    summary = examples_summary(fn_args)
    class_names = list(summary["class_names"])
    style = datasets.get(summary["dataset"])
    config = family.config(custom_config["preset"], num_classes=len(class_names),
                           num_keypoints=style.num_keypoints)
    return family, config, class_names, style


def distribution_strategy():
    """The Trainer's strategy (losses scale by the global batch): MirroredStrategy over the local
    GPUs (or the CPU); MultiWorkerMirroredStrategy when TF_CONFIG names several workers (a
    Vertex AI job with --replica-count > 1). Call it first in run_fn, before any TensorFlow op."""
    from amc_tf.training import distribute
    return distribute.choose_strategy()


def finish_worker(fn_args, strategy):
    """True on the chief (it goes on to save and export). On another worker of a multi-worker
    run: makes `serving_model_dir` exist (TFX's executor checks it after every run_fn; the
    chief writes the model there) and returns False."""
    from amc_tf.training import distribute
    if distribute.is_chief(strategy):
        return True
    import tensorflow as tf
    tf.io.gfile.makedirs(fn_args.serving_model_dir)
    print(f"[trainer] {distribute.task_label(strategy)} done: the chief exports to "
          f"{fn_args.serving_model_dir}", flush=True)
    return False
