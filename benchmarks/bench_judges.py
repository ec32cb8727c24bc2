"""The evaluation's judges on built-in synthetic data: what they reach on real eval clips and what
they cost, as the classifier Trainer trains them (`train.train_judges`).

    .venv/bin/python benchmarks/bench_judges.py [--dataset gestures] [--clips 360] [--seed 0] \
        [--preset cpu] [--classifier-steps 3000] [--augment-copies 2] [--no-jitter] \
        [--set FIELD=VALUE ...]

Writes synthetic clips of the dataset style, preprocesses them as the demo's ExampleGen does
(split by subject, 20 % eval), trains the B.3 classifier (validation split, best epoch, cosine
decay, appearance jitter unless --no-jitter) and B.4's keypoint judge at the preset's size, and
prints their figures on the real eval clips with the wall time of each. `--set` changes a field
of the preset's config (as `amc-tf train --set`), e.g. the B.3 judge of the 32x32 families at
AMC-GAN's cpu size: `--set clf_frame_size=32 --set 'clf_strides=[2,2,2,4]' --set
clf_dropout=0.5 --set clf_learning_rate=0.001`. One run; on a shared machine the times move with
the load (printed).
"""

import argparse
import json
import os
import posixpath
import tempfile
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="gestures")
    p.add_argument("--clips", type=int, default=360)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="cpu")
    p.add_argument("--classifier-steps", type=int, default=3000)
    p.add_argument("--augment-copies", type=int, default=2)
    p.add_argument("--no-jitter", action="store_true",
                   help="train the B.3 classifier without the appearance jitter")
    p.add_argument("--work-dir", default=None, help="keep data and judges here")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override one config field of the preset (VALUE is JSON, else a string)")
    args = p.parse_args(argv)

    import amc_tf  # noqa: F401  oneDNN on before TensorFlow loads
    from amc_tf.data import datasets, preprocess
    from amc_tf.models import get_family
    from amc_tf.training import data as training_data
    from amc_tf.training import keypoint_judge, train
    from amc_tf.training.cli import config_overrides

    work = args.work_dir or tempfile.mkdtemp(prefix="bench_judges_")
    style = datasets.get(args.dataset)
    raw, data = os.path.join(work, "raw"), os.path.join(work, "data")
    t = time.time()
    if not os.path.isdir(raw):
        style.write_synthetic(raw, clips=args.clips, seed=args.seed)
    if not os.path.isdir(data):
        preprocess.run_preprocess(args.dataset, raw, data, augment_copies=args.augment_copies,
                                  eval_fraction=0.2, seed=args.seed)
    data_s = time.time() - t
    summary = preprocess.read_summary(data)
    family = get_family("amc-gan")
    config = family.config(args.preset, num_classes=len(summary["class_names"]),
                           num_keypoints=style.num_keypoints)
    overrides = config_overrides(config, args.set)
    config = config.replace(**overrides)
    train_pattern = posixpath.join(preprocess.split_dir(data, "train"), "*")
    eval_pattern = posixpath.join(preprocess.split_dir(data, "eval"), "*")
    out = os.path.join(work, "judges")
    if args.no_jitter:
        original = training_data.make_classifier_dataset

        def without_jitter(*a, **kw):
            kw["augment"] = False
            return original(*a, **kw)
        train.make_classifier_dataset = without_jitter
    t = time.time()
    _, clf_metrics = train.train_classifier(config, train_pattern, eval_pattern, out,
                                           args.classifier_steps, verbose=0)
    classifier_s = time.time() - t
    judge_config = keypoint_judge.keypoint_judge_config(config.name)
    t = time.time()
    detector, detector_metrics = keypoint_judge.train_keypoint_detector(
        judge_config, train_pattern, eval_pattern, config.num_keypoints, style.num_landmarks,
        verbose=0)
    detector_s = time.time() - t
    t = time.time()
    _, keypoint = keypoint_judge.train_keypoint_classifier(
        judge_config, detector, config, train_pattern, eval_pattern, config.num_keypoints,
        style.num_landmarks, verbose=0)
    keypoint_s = time.time() - t
    print(json.dumps({
        "dataset": args.dataset, "clips": args.clips, "seed": args.seed, "preset": args.preset,
        "classes": len(summary["class_names"]), "eval_clips": clf_metrics["eval_clips"],
        "appearance_jitter": not args.no_jitter, "overrides": overrides,
        "judge_frame_size": config.judge_frame_size,
        "b3_classifier": {**clf_metrics, "seconds": round(classifier_s, 1),
                          "steps": args.classifier_steps},
        "keypoint_detector": {**detector_metrics, "seconds": round(detector_s, 1)},
        "b4_classifier": {**keypoint, "seconds": round(keypoint_s, 1)},
        "data_seconds": round(data_s, 1), "load_average": os.getloadavg(),
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
