"""Step time of AMC-GAN config variants, in one run: what a change of the preset costs.

For each variant (a JSON object of config overrides of the preset; `{}` is the preset itself):
the mean wall time of the G-only reconstruction warm-up step and of Algorithm 1's step
(`AMCGAN.reconstruction_step`, `AMCGAN.train_step`, each a tf.function on one random batch of
the preset's shapes, traced and run twice before `--steps` timed calls), and both as ratios to
the first variant's. Ratios within one run are what to compare: the machine is shared.

    .venv/bin/python benchmarks/bench_step_variants.py --preset cpu \
        '{}' '{"gram": "channel"}' '{"use_rank": false}'
    # the cpu preset's 64x64 level against A.1-A.3 run at 64x64 or at 32x32:
    .venv/bin/python benchmarks/bench_step_variants.py --preset cpu '{}' \
        '{"g_full_resolution_filters": 0, "d_space_to_depth": 1}' \
        '{"frame_size": 32, "g_full_resolution_filters": 0, "d_space_to_depth": 1}'
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))


def time_variant(preset, overrides, steps, num_classes=12, num_keypoints=9):
    """{"warmup_s", "algorithm_1_s"}: mean seconds per step of the preset with `overrides`."""
    import tensorflow as tf

    from amc_tf.models.amc_gan.config import get_preset
    from amc_tf.models.amc_gan.model import AMCGAN
    from fixtures import random_model_batch
    config = get_preset(preset, num_classes, num_keypoints).replace(**overrides)
    gan = AMCGAN(config)
    gan.compile()
    gan.build_all()
    batch = random_model_batch(config, config.batch_size)
    row = {}
    for name, step in (("warmup_s", gan.reconstruction_step), ("algorithm_1_s", gan.train_step)):
        step = tf.function(step)
        step(batch)
        step(batch)
        start = time.perf_counter()
        for _ in range(steps):
            step(batch)
        row[name] = (time.perf_counter() - start) / steps
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("variants", nargs="+", help="JSON objects of config overrides")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--steps", type=int, default=4, help="timed calls per step kind")
    args = p.parse_args(argv)
    import amc_tf  # noqa: F401  oneDNN on before TensorFlow loads
    rows = []
    for text in args.variants:
        row = dict(variant=text, **time_variant(args.preset, json.loads(text), args.steps))
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
