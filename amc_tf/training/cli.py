"""`amc-tf train`: the motion classifier and a model family on `amc-tf preprocess` output.

No TensorFlow at import time (imports happen inside the handler). DATA and OUT may be local,
gs:// or ram:// paths (everything goes through tf.io.gfile). With TF_CONFIG naming several
workers, run the same command on each: they train together (MultiWorkerMirroredStrategy) and
the chief writes OUT (docs/multi_worker.md).
"""

import posixpath

from amc_tf.arguments import at_least
from amc_tf.models.family import DEFAULT_FAMILY, family_names
from amc_tf.models.registry import choices_by_family


def register(subparsers):
    p = subparsers.add_parser(
        "train", help="train the motion classifier and a model (outside TFX)",
        description="Trains on DATA/Split-train/*, samples DATA/Split-eval/*. Checkpoints in "
                    "OUT/model/checkpoints resume after a kill; TensorBoard logs in "
                    "OUT/model/logs. With TF_CONFIG naming several workers (as Vertex AI "
                    "sets it), run the same command on every worker: they train as one "
                    "(MultiWorkerMirroredStrategy, the batch split across them) and the chief "
                    "writes OUT.")
    p.add_argument("--model", default=DEFAULT_FAMILY, choices=family_names(),
                   help="model family (default %(default)s)")
    p.add_argument("--preset", default="cpu",
                   help=f"the family's preset ({choices_by_family('presets')})")
    p.add_argument("--data", required=True, help="amc-tf preprocess output directory")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--steps", type=at_least(1), default=None,
                   help="training steps (default: preset's)")
    p.add_argument("--classifier-steps", type=at_least(0), default=0,
                   help="also train the judges first (the B.3 motion classifier for this many "
                        "steps, B.4's keypoint judge at the preset's size) and evaluate the "
                        "model with the metric suite at the end")
    p.add_argument("--judges", default=None, metavar="DIR",
                   help="evaluate with judges saved before (a train OUT/classifier, a "
                        "compare's OUT/judges/<n>) instead of training them")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override one config field of the preset (repeatable; VALUE is JSON, "
                        "else a string), e.g. --set gram=channel --set w_l1=10")
    p.add_argument("--no-keypoint-judge", action="store_true",
                   help="skip B.4's keypoint detector and classifier (no keypoint accuracy)")
    p.add_argument("--num-classes", type=at_least(2), default=None,
                   help="default: the classes in DATA/summary.json")
    p.add_argument("--ablation", default="none",
                   help=f"a named ablation of the model family (AMC-GAN's: Table 4's rows; "
                        f"{choices_by_family('ablations')})")
    p.add_argument("--batch-size", type=at_least(1), default=None)
    p.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    p.add_argument("--mixed-precision", default=None, help="e.g. mixed_bfloat16")
    p.add_argument("--no-resume", action="store_true",
                   help="start from step 0 (refused where OUT holds an earlier run's "
                        "checkpoints, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="with --no-resume: remove the earlier run's checkpoints in OUT first")
    p.set_defaults(func=run)


def config_overrides(config, settings):
    """{field: value} of `--set FIELD=VALUE` arguments for `config` (a family's dataclass);
    VALUE is read as JSON, else kept as a string (`config.replace` turns lists into tuples). An
    unknown field or a malformed setting is a ValueError naming it."""
    import dataclasses
    import json
    fields = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for setting in settings:
        name, sep, text = setting.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--set takes FIELD=VALUE, got {setting!r}")
        if name not in fields:
            raise ValueError(f"--set {name}: {type(config).__name__} has no field {name!r}; "
                             f"fields: {', '.join(sorted(fields))}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        changes[name] = value
    return changes


def run(args):
    import sys

    from amc_tf.training.guards import EarlierRunExists, TrainingDiverged, UnusableCheckpoint
    if args.overwrite and not args.no_resume:
        print("amc-tf train: error: --overwrite replaces an earlier run's checkpoints: it goes "
              "with --no-resume (without it the run resumes them)", file=sys.stderr, flush=True)
        return 2
    try:
        return _run(args)
    except EarlierRunExists as e:
        print(f"amc-tf train: error: {e}", file=sys.stderr, flush=True)
        return 2
    except (TrainingDiverged, UnusableCheckpoint) as e:
        # Expected ends of a run: the message says what happened and the way out.
        print(f"amc-tf train: error: {e}", file=sys.stderr, flush=True)
        return 1


def _run(args):
    from amc_tf.training import distribute
    # First: a multi-worker strategy must exist before any TensorFlow op runs. One machine:
    # TensorFlow's default strategy, as always here (the pipeline's Trainers mirror over GPUs).
    strategy = distribute.choose_strategy() if distribute.cluster_workers() > 1 else None

    from amc_tf.data import datasets, preprocess
    from amc_tf.models import get_family
    from amc_tf.training import files, train

    family = get_family(args.model)
    summary = files.read_examples_summary(args.data)
    config = family.config(args.preset,
                           num_classes=args.num_classes or len(summary["class_names"]),
                           num_keypoints=datasets.get(summary["dataset"]).num_keypoints,
                           ablation=args.ablation)
    changes = {}
    if args.batch_size:
        changes["batch_size"] = args.batch_size
    if args.jit:
        changes["jit_compile"] = True
    if args.mixed_precision:
        changes["mixed_precision"] = args.mixed_precision
    try:
        changes.update(config_overrides(config, args.set))
        if changes:
            config = config.replace(**changes)        # validates: a bad value is named
    except (TypeError, ValueError) as e:
        import sys
        print(f"amc-tf train: error: {e}", file=sys.stderr, flush=True)
        return 2
    model_dir = posixpath.join(args.out, "model")
    if args.no_resume:       # before the judges are trained: refused, nothing is written
        train.check_no_earlier_run(posixpath.join(model_dir, train.CHECKPOINT_DIR),
                                   args.overwrite)
    train_pattern = posixpath.join(preprocess.split_dir(args.data, "train"), "*")
    eval_pattern = posixpath.join(preprocess.split_dir(args.data, "eval"), "*")
    classifier_dir = posixpath.join(args.out, "classifier")
    classifier = keypoint = None
    if args.judges:
        classifier, keypoint, judges = train.load_judges(args.judges)
        print(f"[train] judges from {args.judges}: {judges}")
    elif args.classifier_steps:
        style = datasets.get(summary["dataset"])
        classifier, keypoint, judges = train.train_judges(
            config, train_pattern, eval_pattern, classifier_dir, args.classifier_steps,
            style.num_landmarks, strategy=strategy, keypoint_judge=not args.no_keypoint_judge)
        print(f"[train] judges on real clips: {judges}")
    model = train.train_model(family, config, train_pattern, eval_pattern, model_dir,
                              steps=args.steps, strategy=strategy, resume=not args.no_resume,
                              overwrite=args.overwrite)
    if not distribute.is_chief(strategy):
        print(f"[train] {distribute.task_label(strategy)} done: the chief saves the generator "
              f"and evaluates")
        return 0
    print(f"[train] generator saved to {posixpath.join(model_dir, family.generator_file())}")
    if classifier is None:
        return 0
    if train.first_batch(eval_pattern, config, 1) is None:
        print("[train] the eval split holds no clip: no generated-video evaluation")
        return 0
    from amc_tf.metrics import suite
    from amc_tf.training.evaluate import evaluate_generator
    bank = train.build_velocity_bank(train_pattern, config) if family.uses_velocity else None
    class_names = list(summary["class_names"])[:config.num_classes]
    table = evaluate_generator(family, family.generator(model), classifier, eval_pattern,
                               config, class_names, bank, keypoint_judge=keypoint)
    files.write_json(posixpath.join(args.out, files.EVALUATION_FILE), table)
    print(suite.format_table(table))
    return 0
