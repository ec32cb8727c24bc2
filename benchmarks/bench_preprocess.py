"""Preprocessing throughput (clips/s) with 1 and 2 Beam workers, and peak memory for two sizes.

    .venv/bin/python benchmarks/bench_preprocess.py [--dataset gestures] [--sizes 60 240]

Each configuration runs in a fresh process: the CLI's Beam pipeline (`preprocess.build_pipeline`) on
the DirectRunner in multi-processing mode (so 1 and 2 workers pay the same per-process costs).
Throughput is reported two ways: end to end (wall time of the whole run, including starting the
worker processes) and over the processing window, from the first to the last finished clip (the
Beam distribution metric `clip_done_unix_ms`), which excludes start-up. Peak memory is the largest
summed RSS of the run's whole process tree, sampled every 0.1 s: clips are streamed, so it must not
grow with N. On a shared machine, other jobs' load skews the figures: the load average is printed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import psutil

from amc_tf.data import datasets


def _tree_rss(proc):
    total = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_measured(cmd):
    """Runs cmd; returns (wall s, peak RSS of its process tree in bytes, its last stdout line)."""
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
    return wall, peak[0], output.strip().splitlines()[-1]


def run_one(dataset, raw, out, workers, augment_copies):
    """One preprocessing run in this process; prints a JSON line with its processing window."""
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions

    from amc_tf.data import preprocess
    args = [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    options = preprocess.PreprocessOptions(augment_copies=augment_copies)
    pipeline = beam.Pipeline(options=PipelineOptions(args))
    preprocess.build_pipeline(pipeline, dataset, raw, out, options)
    result = pipeline.run()
    result.wait_until_finish()
    done = result.metrics().query(MetricsFilter().with_name("clip_done_unix_ms"))["distributions"]
    dist = done[0].committed
    summary = preprocess.read_summary(out)
    print(json.dumps({"accepted": summary["accepted_clips"], "count": dist.count,
                      "window_s": (dist.max - dist.min) / 1000.0}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="gestures", choices=datasets.names())
    parser.add_argument("--sizes", type=int, nargs=2, default=(60, 240), metavar=("N1", "N2"))
    parser.add_argument("--workers", type=int, nargs="+", default=(1, 2))
    parser.add_argument("--augment-copies", type=int, default=1)
    parser.add_argument("--work-dir", default=None, help="default: a temporary directory")
    parser.add_argument("--one", nargs=3, metavar=("RAW", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        raw, out, workers = args.one
        return run_one(args.dataset, raw, out, int(workers), args.augment_copies)

    work = args.work_dir or tempfile.mkdtemp(prefix="bench_preprocess_")
    results = {}
    for size in args.sizes:
        raw = os.path.join(work, f"raw_{size}")
        if not os.path.isdir(raw):
            t = time.perf_counter()
            datasets.get(args.dataset).write_synthetic(raw, clips=size, seed=0)
            print(f"synthesized {size} {args.dataset} clips in {time.perf_counter() - t:.1f} s",
                  flush=True)
        for workers in args.workers:
            out = os.path.join(work, f"out_{size}_{workers}")
            shutil.rmtree(out, ignore_errors=True)
            cmd = [sys.executable, os.path.abspath(__file__), "--dataset", args.dataset,
                   "--augment-copies", str(args.augment_copies), "--one", raw, out, str(workers)]
            wall, peak, line = run_measured(cmd)
            run = json.loads(line)
            if run["accepted"] != size:
                raise RuntimeError(f"only {run['accepted']} of {size} clips accepted in {out}")
            rate = (run["count"] - 1) / run["window_s"] if run["window_s"] > 0 else float("nan")
            results[(size, workers)] = dict(wall=wall, peak=peak, rate=rate)
            print(f"N={size:4d} workers={workers}: {wall:6.1f} s end to end ({size / wall:5.2f} "
                  f"clips/s), processing {rate:5.2f} clips/s over {run['window_s']:.1f} s, "
                  f"peak RSS {peak / 2**20:5.0f} MiB  (load {os.getloadavg()[0]:.1f})", flush=True)

    n1, n2 = args.sizes
    print("\nsummary")
    for workers in args.workers:
        a, b = results[(n1, workers)], results[(n2, workers)]
        print(f"  workers={workers}: processing {a['rate']:.2f} / {b['rate']:.2f} clips/s "
              f"(N={n1} / N={n2}); peak RSS {a['peak'] / 2**20:.0f} MiB (N={n1}) vs "
              f"{b['peak'] / 2**20:.0f} MiB (N={n2})")
    if 1 in args.workers and 2 in args.workers:
        ratio = results[(n2, 2)]["rate"] / results[(n2, 1)]["rate"]
        e2e = results[(n2, 1)]["wall"] / results[(n2, 2)]["wall"]
        print(f"  speed-up 2 vs 1 workers at N={n2}: {ratio:.2f}x processing (target >= 1.7x), "
              f"{e2e:.2f}x end to end")
    print(f"  CPUs: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    sys.exit(main())
