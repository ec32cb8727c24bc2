"""Step time of AMC-GAN config variants, in one run: what a change of the preset costs.

For each variant (a JSON object of config overrides of the preset; `{}` is the preset itself):
the wall time of the G-only reconstruction warm-up step and of Algorithm 1's step
(`AMCGAN.reconstruction_step`, `AMCGAN.train_step`, each a tf.function on one random batch of
the preset's shapes, traced and run twice first): the median over `--rounds` rounds, each
round timing `--steps` calls of every variant in turn, and both as ratios to the first
variant's. Ratios within one run are what to compare: the machine is shared.

    .venv/bin/python benchmarks/bench_step_variants.py --preset cpu \
        '{}' '{"gram": "channel"}' '{"use_rank": false}'
    # the cpu preset's 64x64 level (sub-pixel output, y_a's mask) against its earlier gated
    # form and against A.1-A.3 run at 64x64:
    .venv/bin/python benchmarks/bench_step_variants.py --preset cpu '{}' \
        '{"g_full_resolution_output": "gate", "g_appearance_mask": false}' \
        '{"g_full_resolution_filters": 0, "g_full_resolution_output": "gate",
          "g_appearance_mask": false, "d_space_to_depth": 1}'
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))


def step_functions(preset, overrides, num_classes=12, num_keypoints=9):
    """{"warmup_s": fn, "algorithm_1_s": fn}: the preset with `overrides`, each step kind a
    tf.function on one random batch of its shapes, traced and run twice."""
    import tensorflow as tf

    from amc_tf.models.amc_gan.config import get_preset
    from amc_tf.models.amc_gan.model import AMCGAN
    from fixtures import random_model_batch
    config = get_preset(preset, num_classes, num_keypoints).replace(**overrides)
    gan = AMCGAN(config)
    gan.compile()
    gan.build_all()
    batch = random_model_batch(config, config.batch_size)
    functions = {}
    for name, step in (("warmup_s", gan.reconstruction_step), ("algorithm_1_s", gan.train_step)):
        step = tf.function(step)
        step(batch)
        step(batch)
        functions[name] = lambda step=step: step(batch)
    return functions


def time_variants(preset, variants, steps, rounds):
    """Per variant {"warmup_s", "algorithm_1_s"}: the median over `rounds` of the mean seconds
    of `steps` calls. The rounds visit the variants in turn, so a load that comes and goes on
    the machine falls on all of them alike."""
    import numpy as np
    functions = [step_functions(preset, overrides) for overrides in variants]
    times = [{name: [] for name in f} for f in functions]
    for _ in range(rounds):
        for f, t in zip(functions, times):
            for name, call in f.items():
                start = time.perf_counter()
                for _ in range(steps):
                    call()
                t[name].append((time.perf_counter() - start) / steps)
    return [{name: float(np.median(v)) for name, v in t.items()} for t in times]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("variants", nargs="+", help="JSON objects of config overrides")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--steps", type=int, default=4, help="timed calls per step kind and round")
    p.add_argument("--rounds", type=int, default=3, help="rounds over the variants (median)")
    args = p.parse_args(argv)
    import amc_tf  # noqa: F401  oneDNN on before TensorFlow loads
    timed = time_variants(args.preset, [json.loads(t) for t in args.variants], args.steps,
                          args.rounds)
    rows = []
    for text, times in zip(args.variants, timed):
        row = dict(variant=text, **times)
        first = rows[0] if rows else row
        row["warmup_ratio"] = row["warmup_s"] / first["warmup_s"]
        row["algorithm_1_ratio"] = row["algorithm_1_s"] / first["algorithm_1_s"]
        rows.append(row)
        print(f"{args.preset} {text}: warm-up step {row['warmup_s']:.3f} s "
              f"({row['warmup_ratio']:.2f}x), Algorithm 1 step {row['algorithm_1_s']:.3f} s "
              f"({row['algorithm_1_ratio']:.2f}x)", flush=True)
    return rows


if __name__ == "__main__":
    main()
