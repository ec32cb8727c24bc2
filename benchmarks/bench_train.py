"""Train-step and generator benchmarks on this machine.

For each preset: train-step clips/s, the step's FLOPs (TF's graph profiler over the traced step:
forward, backward and both networks' updates), achieved GFLOP/s and its ratio to a conv/matmul
peak measured in the same run, peak memory (process max RSS), and the generator's forward
latency for one video against its FLOP bound (FLOPs / peak).

    .venv/bin/python benchmarks/bench_train.py --presets cpu paper-natops --steps 3
"""

import argparse
import json
import resource
import time

import numpy as np
import tensorflow as tf

from amc_tf.config import get_preset
from amc_tf.models import Generator
from amc_tf.models.amcgan import AMCGAN
from amc_tf.training.testing import random_model_batch


def graph_flops(concrete_fn):
    """Float operations of a traced function (Conv/MatMul/BiasAdd/... and their gradients)."""
    from tensorflow.python.profiler import model_analyzer, option_builder
    opts = option_builder.ProfileOptionBuilder(
        option_builder.ProfileOptionBuilder.float_operation()).with_empty_output().build()
    prof = model_analyzer.profile(concrete_fn.graph, options=opts)
    return float(prof.total_float_ops)


def timed(fn, repeats):
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def measured_peak(repeats=5):
    """Best of a 2048^2 matmul and a 3x3 conv 64->64 on 64x64 x 16 (GFLOP/s), in-graph."""
    a = tf.random.normal((2048, 2048))
    mm = tf.function(lambda: tf.matmul(a, a))
    t_mm = timed(lambda: mm().numpy(), repeats)
    x = tf.random.normal((16, 64, 64, 64))
    k = tf.random.normal((3, 3, 64, 64))
    conv = tf.function(lambda: tf.nn.conv2d(x, k, 1, "SAME"))
    t_conv = timed(lambda: conv().numpy(), repeats)
    mm_gflops = 2 * 2048 ** 3 / t_mm / 1e9
    conv_gflops = 2 * 16 * 64 * 64 * 9 * 64 * 64 / t_conv / 1e9
    return max(mm_gflops, conv_gflops), mm_gflops, conv_gflops


def bench_preset(name, batch_size, steps, peak, jit=False):
    c = get_preset(name)
    c = c.replace(batch_size=batch_size or c.batch_size, jit_compile=jit)
    gan = AMCGAN(c)
    gan.compile()
    gan.build_all()
    batch = random_model_batch(c, c.batch_size)
    step = tf.function(gan.train_step, jit_compile=jit)
    flops = graph_flops(step.get_concrete_function(batch))
    t_step = timed(lambda: step(batch)["g_loss"].numpy(), steps)

    g = Generator(c)
    g.build()
    one = {"appearance": batch["video"][:1, 0], "motion_class": batch["motion_class"][:1],
           "velocity": batch["velocity"][:1], "noise": tf.zeros((1, c.noise_dim))}
    forward = tf.function(lambda x: g(x, training=False))
    g_flops = graph_flops(forward.get_concrete_function(one))
    t_gen = timed(lambda: forward(one).numpy(), max(3, steps))
    achieved = flops / t_step / 1e9
    bound = g_flops / (peak * 1e9)
    return {
        "preset": name, "batch_size": c.batch_size, "frames": c.num_frames,
        "frame_size": c.frame_size, "step_s": round(t_step, 3),
        "clips_per_s": round(c.batch_size / t_step, 2),
        "step_gflop": round(flops / 1e9, 1), "achieved_gflops": round(achieved, 1),
        "ratio_to_peak": round(achieved / peak, 3),
        "generator_latency_ms": round(1e3 * t_gen, 1),
        "generator_gflop": round(g_flops / 1e9, 2),
        "generator_flop_bound_ms": round(1e3 * bound, 1),
        "latency_over_bound": round(t_gen / bound, 2),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["cpu", "paper-natops"])
    parser.add_argument("--batch-size", type=int, nargs="+", default=None,
                        help="per preset (default: cpu preset's own, 2 for paper presets)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    args = parser.parse_args()
    peak, mm, conv = measured_peak()
    print(f"measured peak: matmul {mm:.0f} GFLOP/s, conv {conv:.0f} GFLOP/s -> {peak:.0f}")
    rows = []
    for i, name in enumerate(args.presets):
        bs = args.batch_size[i] if args.batch_size else (2 if name.startswith("paper") else None)
        row = bench_preset(name, bs, args.steps, peak, jit=args.jit)
        row["peak_gflops"] = round(peak, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


if __name__ == "__main__":
    main()
