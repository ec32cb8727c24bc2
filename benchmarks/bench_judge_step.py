"""Step time of B.3 judge variants, in one run: what a change of the judge costs.

For each variant (a JSON object of config overrides of AMC-GAN's preset; `{}` is the preset's
own judge): the wall time of one classifier train step on a fixed batch (the network alone), of
one step fed by its input pipeline as `train.train_classifier` trains it (`make_classifier_dataset`
with the appearance jitter, the clips cached in memory: `data.JUDGE_CACHE_BYTES`) and of one fed
by the records read every pass (no cache): medians over `--rounds` rounds, each round timing
`--steps` steps of every variant in turn, and all as ratios to the first variant's cached step.
Ratios within one run are what to compare: the machine is shared.

    .venv/bin/python benchmarks/bench_judge_step.py --data DIR --preset cpu '{}' \
        '{"clf_frame_size": 32, "clf_strides": [2, 2, 2, 4], "clf_dropout": 0.5,
          "clf_learning_rate": 0.001}'
    # DIR: preprocessed clips (`amc-tf preprocess` output, a demo's ExampleGen examples, or
    # the data/ of `bench_judges.py --work-dir`); the second variant is the 32x32 judge of the
    # other families' cpu presets.
"""

import argparse
import json
import os
import statistics
import time


def judge_steps(config, train_pattern):
    """(fixed-batch, cached-pipeline-fed, streamed-pipeline-fed) timers of the B.3 judge of
    `config`: each `timer(steps)` runs that many train steps and returns seconds per step. A
    fed timer reads a fresh iterator (the cache, filled here, is shared by all of them), so no
    batch prefetched while another timer ran is counted."""
    import keras

    from amc_tf.models.classifier import build_classifier
    from amc_tf.training.data import JUDGE_CACHE_BYTES, make_classifier_dataset
    classifier = build_classifier(config)
    classifier.build()
    classifier.compile(optimizer=keras.optimizers.Adam(config.clf_learning_rate),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cached, streamed = (make_classifier_dataset(train_pattern, config, config.clf_batch_size,
                                                augment=True, cache_bytes=cache_bytes)
                        for cache_bytes in (JUDGE_CACHE_BYTES, 0))
    # The first batch sorts a block of up to features.SHUFFLE_BUFFER clips: a small split whole,
    # so the cache is filled before any timing.
    video, label = next(iter(cached))
    classifier.train_on_batch(video, label)

    def fixed(steps):
        t = time.perf_counter()
        for _ in range(steps):
            classifier.train_on_batch(video, label)
        return (time.perf_counter() - t) / steps

    def fed(dataset):
        def timer(steps):
            batches = iter(dataset)
            classifier.train_on_batch(*next(batches))
            t = time.perf_counter()
            for _ in range(steps):
                classifier.train_on_batch(*next(batches))
            return (time.perf_counter() - t) / steps
        return timer
    timers = fixed, fed(cached), fed(streamed)
    for timer in timers[1:]:
        timer(1)
    return timers


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("variants", nargs="*", default=["{}"],
                   help="JSON objects of config overrides; the first is the reference")
    p.add_argument("--data", required=True, help="preprocessed clips (Split-train/ inside)")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)

    import amc_tf  # noqa: F401  oneDNN on before TensorFlow loads
    from amc_tf.data import datasets, preprocess
    from amc_tf.models import get_family
    from amc_tf.training.files import read_examples_summary

    summary = read_examples_summary(args.data)
    config = get_family("amc-gan").config(
        args.preset, num_classes=len(summary["class_names"]),
        num_keypoints=datasets.get(summary["dataset"]).num_keypoints)
    pattern = os.path.join(preprocess.split_dir(args.data, "train"), "*")
    steps = {v: judge_steps(config.replace(**json.loads(v)), pattern) for v in args.variants}
    times = {v: ([], [], []) for v in args.variants}
    for _ in range(args.rounds):
        for variant, fns in steps.items():
            for timer, out in zip(fns, times[variant]):
                out.append(timer(args.steps))
    rows = []
    for variant in args.variants:
        fixed, fed, streamed = (statistics.median(t) for t in times[variant])
        rows.append({"variant": variant, "step_s": fixed, "fed_step_s": fed,
                     "streamed_step_s": streamed})
    for row in rows:
        row["step_ratio"] = row["step_s"] / rows[0]["step_s"]
        row["fed_step_ratio"] = row["fed_step_s"] / rows[0]["fed_step_s"]
        row["streamed_step_ratio"] = row["streamed_step_s"] / rows[0]["fed_step_s"]
        print(f"{row['variant']}: step {row['step_s'] * 1e3:.1f} ms ({row['step_ratio']:.2f}x), "
              f"with its input pipeline {row['fed_step_s'] * 1e3:.1f} ms "
              f"({row['fed_step_ratio']:.2f}x), with the records read every pass "
              f"{row['streamed_step_s'] * 1e3:.1f} ms ({row['streamed_step_ratio']:.2f}x)",
              flush=True)
    print(f"medians of {args.rounds} rounds of {args.steps} steps, load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    return rows


if __name__ == "__main__":
    main()
