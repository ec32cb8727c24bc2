"""Preprocessing throughput (clips/s) with 1 and 2 Beam workers, and peak memory for two sizes.

    .venv/bin/python benchmarks/bench_preprocess.py [--dataset gestures] [--sizes 40 120]

Each run is `amc-tf preprocess` in its own process on the DirectRunner in multi-processing mode
(so 1 and 2 workers pay the same per-process costs). Throughput is reported end to end and as the
marginal rate between the two sizes, (N2 - N1) / (t2 - t1), which cancels the fixed start-up cost
(worker processes importing TensorFlow and Beam). Peak memory is the largest summed RSS of the run's
whole process tree, sampled every 0.1 s: clips are streamed, so it must not grow with N.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import psutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tree_rss(proc):
    total = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_measured(cmd):
    """Runs cmd; returns (wall seconds, peak RSS of its process tree in bytes)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ps = psutil.Process(proc.pid)
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(ps))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    wall = time.perf_counter() - start
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{output[-3000:]}")
    return wall, peak[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="gestures", choices=("gestures", "faces"))
    parser.add_argument("--sizes", type=int, nargs=2, default=(40, 120), metavar=("N1", "N2"))
    parser.add_argument("--workers", type=int, nargs="+", default=(1, 2))
    parser.add_argument("--augment-copies", type=int, default=1)
    parser.add_argument("--work-dir", default=None, help="default: a temporary directory")
    args = parser.parse_args(argv)

    from amc_tf.data import synthetic
    work = args.work_dir or tempfile.mkdtemp(prefix="bench_preprocess_")
    amc_tf = [sys.executable, "-m", "amc_tf.cli"]
    results = {}
    for size in args.sizes:
        raw = os.path.join(work, f"raw_{size}")
        if not os.path.isdir(raw):
            t = time.perf_counter()
            writer = synthetic.write_gestures if args.dataset == "gestures" else \
                synthetic.write_faces
            writer(raw, clips=size, seed=0)
            print(f"synthesized {size} {args.dataset} clips in {time.perf_counter() - t:.1f} s",
                  flush=True)
        for workers in args.workers:
            out = os.path.join(work, f"out_{size}_{workers}")
            cmd = amc_tf + ["preprocess", "--dataset", args.dataset, "--raw", raw, "--out", out,
                            "--augment-copies", str(args.augment_copies),
                            "--beam-arg=--direct_running_mode=multi_processing",
                            f"--beam-arg=--direct_num_workers={workers}"]
            wall, peak = run_measured(cmd)
            with open(os.path.join(out, "summary.json")) as f:
                accepted = json.load(f)["accepted_clips"]
            if accepted != size:
                raise RuntimeError(f"only {accepted} of {size} clips accepted in {out}")
            results[(size, workers)] = (wall, peak)
            print(f"N={size:4d} workers={workers}: {wall:6.1f} s  {size / wall:5.2f} clips/s "
                  f"end-to-end  peak RSS {peak / 2**20:7.0f} MiB", flush=True)

    n1, n2 = args.sizes
    print("\nsummary")
    marginal = {}
    for workers in args.workers:
        dt = results[(n2, workers)][0] - results[(n1, workers)][0]
        marginal[workers] = (n2 - n1) / dt if dt > 0 else float("nan")
        print(f"  workers={workers}: marginal {marginal[workers]:.2f} clips/s, end-to-end "
              f"{n2 / results[(n2, workers)][0]:.2f} clips/s at N={n2}; peak RSS "
              f"{results[(n1, workers)][1] / 2**20:.0f} MiB (N={n1}) vs "
              f"{results[(n2, workers)][1] / 2**20:.0f} MiB (N={n2})")
    if 1 in marginal and 2 in marginal:
        ratio = marginal[2] / marginal[1]
        e2e = results[(n2, 1)][0] / results[(n2, 2)][0]
        print(f"  speed-up 2 vs 1 workers: {ratio:.2f}x marginal (target >= 1.7x), "
              f"{e2e:.2f}x end-to-end at N={n2}")
    print(f"  CPUs: {os.cpu_count()} (load average {os.getloadavg()[0]:.1f} at the end)")


if __name__ == "__main__":
    sys.exit(main())
