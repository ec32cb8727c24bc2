"""Train-step and generator benchmarks on this machine.

For each preset: train-step clips/s, the FLOPs of the work the step executes (forward, backward
and both networks' updates; see "How FLOPs are counted"), achieved GFLOP/s and its ratio to a
conv/matmul peak measured in the same run, peak memory per phase, the generator's forward
latency for one video against its FLOP bound (FLOPs / peak), and the B.3 classifier's
train-step time. TF_ENABLE_ONEDNN_OPTS=0 in the environment measures TensorFlow without its
oneDNN kernels.

How FLOPs are counted. Each op's FLOPs come from TF's graph profiler (its registry of
Conv2D/MatMul/BiasAdd/... and their gradients) plus `conv_flops` for the convolutions it leaves
at 0. The traced graph holds work that never runs: the tape also builds gradients nothing uses
(e.g. the gradient of a network's input image), and Grappler prunes them before execution.
`step_gflop` counts only the ops the step's outputs and variable updates depend on (`live_ops`:
the same dependency walk as that pruning). It is checked in every run against the graph the
runtime actually executed: the nodes of the partition graphs of the step's first call (run
metadata), fused kernels mapped back to the ops they fuse (`step_gflop_executed_graph`; none
under --jit, where XLA runs one cluster). `step_gflop_traced` is the old whole-graph count.
Ops inside nested functions (a tf.while_loop's body) are not counted by either.

Peak memory per phase: the process's resident-set high-water mark (VmHWM), reset through
/proc/self/clear_refs before each phase (train step, generation of 1 and 8 videos, classifier
step); each phase also says the resident set it started from (TF keeps freed memory).

With --profile, the one-video generator forward is also traced with TF's profiler and the
kernel time per op type (and per convolution, with its FLOPs and GFLOP/s) is printed: what
bounds the latency.

    .venv/bin/python benchmarks/bench_train.py [--models amc-gan imaginator] \
        --presets cpu paper-natops --steps 3 [--profile] [--gen-calls 200]
"""

import argparse
import collections
import contextlib
import glob
import json
import resource
import shutil
import statistics
import tempfile
import time

import os
import sys

import amc_tf  # noqa: F401  first: it turns oneDNN on before TensorFlow loads (README, Stack)
import tensorflow as tf

from amc_tf.models import get_family
from amc_tf.training.train import graph_optimizer_options

# The benchmarks share the tests' random batch (tests/fixtures.py: not part of the package).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests"))
from fixtures import random_model_batch  # noqa: E402


def _flops_profile(graph):
    """TF's graph profiler (float operations) over a traced graph."""
    from tensorflow.python.profiler import model_analyzer, option_builder
    opts = option_builder.ProfileOptionBuilder(
        option_builder.ProfileOptionBuilder.float_operation()).with_empty_output().build()
    return model_analyzer.profile(graph, options=opts)


def live_ops(graph):
    """Names of the ops a traced function's outputs and stateful ops (its control outputs: the
    variable updates) depend on, through data and control edges: what survives Grappler's
    pruning of dead work."""
    live, stack = set(), [t.op for t in graph.outputs] + list(graph.control_outputs)
    while stack:
        op = stack.pop()
        if op.name not in live:
            live.add(op.name)
            stack.extend(t.op for t in op.inputs)
            stack.extend(op.control_inputs)
    return live


def run_and_count(fn, args):
    """Calls tf.function `fn(args)` for the first time with run metadata on (the runtime
    records a function's graphs when it instantiates it) and returns its FLOP counts:
    {"traced": every op of the traced graph, dead ones included, "live": `live_ops` only,
    "executed": the nodes of the partition graphs the runtime ran (fused kernels, named after
    one of their ops, counted as the ops they fuse; None when XLA compiled the function into
    one cluster)}."""
    from tensorflow.python.eager import context
    concrete = fn.get_concrete_function(args)
    flops = _node_flops(concrete.graph)
    live = live_ops(concrete.graph)
    context.enable_run_metadata()
    try:
        tf.nest.map_structure(lambda t: t.numpy(), fn(args))
        metadata = context.export_run_metadata()
    finally:
        context.disable_run_metadata()
    ops_by_name = {op.name: op for op in concrete.graph.get_operations()}
    ran = {node.name: node.op for graph in metadata.function_graphs
           for part in graph.partition_graphs for node in part.node}
    executed = None
    if ran and not any(op.startswith("_Xla") for op in ran.values()):
        executed = sum(_fused_flops(ops_by_name, flops, name, ran) if "Fused" in op or
                       "WithBias" in op else flops.get(name, 0) for name, op in ran.items())
    return {"traced": float(sum(flops.values())),
            "live": float(sum(f for name, f in flops.items() if name in live)),
            "executed": executed}


# Convolutions TF's profiler has no FLOP statistics for (it counts them as 0): 3D convolutions,
# their gradients, and the 3D transposed convolutions (Conv3DBackpropInputV2) of ImaGINator.
_UNCOUNTED_CONVS = {"Conv3D": 1, "Conv3DBackpropInputV2": 2, "Conv3DBackpropFilterV2": 2,
                    "Conv3DBackpropInput": 2, "Conv3DBackpropFilter": 2}


def conv_flops(op):
    """2 x multiply-adds of a convolution op from its static shapes: every element of the
    "output side" tensor (the output of a forward conv; `out_backprop` of its gradients and of
    a transposed conv) takes kernel volume x input-channel multiply-adds."""
    filter_shape = (op.inputs[1].shape if op.type == "Conv3D" else
                    op.inputs[1].shape if "Input" in op.type else None)
    if filter_shape is None:                         # BackpropFilter: the filter is an output
        filter_shape = op.outputs[0].shape
    output_side = op.outputs[0].shape if op.type == "Conv3D" else \
        op.inputs[_UNCOUNTED_CONVS[op.type]].shape
    if not (filter_shape.is_fully_defined() and output_side.is_fully_defined()):
        return 0
    kernel_volume_in = 1
    for d in filter_shape[:-1]:                      # [kt, kh, kw, in, out]: all but `out`
        kernel_volume_in *= int(d)
    return 2 * output_side.num_elements() * kernel_volume_in


def _node_flops(graph):
    """{node name: FLOPs} from TF's graph profiler, plus `conv_flops` of the convolutions the
    profiler leaves at 0."""
    flops = {}

    def walk(node):
        for child in node.children:
            flops[child.name] = child.float_ops
            walk(child)
    walk(_flops_profile(graph))
    for op in graph.get_operations():
        if op.type in _UNCOUNTED_CONVS and not flops.get(op.name):
            flops[op.name] = conv_flops(op)
    return flops


_FUSABLE = ("BiasAdd", "BiasAddGrad", "LeakyRelu", "Relu", "Add", "AddV2")


def _fused_flops(ops_by_name, flops, name, ran=None):
    """FLOPs of a runtime node. Grappler fuses Conv2D + BiasAdd + activation (and oneDNN a
    filter gradient + BiasAddGrad) into one node named after one of them, so walk from it
    through the fused ops to the convolution. `ran` (names of the nodes that executed): never
    enter an op that ran as a node of its own (its FLOPs are counted there)."""
    total, stack, seen = 0, [name], set()
    while stack:
        node = stack.pop()
        if node in seen or node not in ops_by_name:
            continue
        seen.add(node)
        op = ops_by_name[node]
        total += flops.get(node, 0)
        if op.type in _FUSABLE:
            stack += [t.op.name for t in op.inputs if ran is None or t.op.name not in ran]
    return total


def profile_forward(fn, inputs, repeats=20, top=10):
    """Kernel time of `fn(inputs)` per op type and per heaviest node, from a TF profiler trace.

    Returns dict(wall_ms, kernel_ms, kernels_per_call, by_type=[...], top_nodes=[...]); kernel
    times are summed over the intra-op threads (so they can exceed the wall time).
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    concrete = fn.get_concrete_function(inputs)
    flops = _node_flops(concrete.graph)
    ops_by_name = {op.name: op for op in concrete.graph.get_operations()}
    for _ in range(3):
        fn(inputs).numpy()
    logdir = tempfile.mkdtemp(prefix="amc_profile_")
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    for _ in range(repeats):
        fn(inputs).numpy()
    wall = (time.perf_counter() - start) / repeats
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    with open(sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1], "rb") as f:
        space.ParseFromString(f.read())
    shutil.rmtree(logdir, ignore_errors=True)
    times, counts = collections.Counter(), collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name and "::" not in name:  # "node:OpType" kernels, not executor
                    times[name] += event.duration_ps / 1e9 / repeats
                    counts[name] += 1
    by_type, type_flops = collections.Counter(), collections.Counter()
    node_flops = {}
    ran = {name.rsplit(":", 1)[0] for name in times}
    for name, ms in times.items():
        node, op_type = name.rsplit(":", 1)
        by_type[op_type] += ms
        node_flops[name] = _fused_flops(ops_by_name, flops, node, ran) if "Conv" in op_type \
            else flops.get(node, 0)
        type_flops[op_type] += node_flops[name]
    row = lambda key, ms, fl: {"op": key, "kernel_ms": round(ms, 3), "mflop": round(fl / 1e6, 1),
                               "gflops": round(fl / 1e6 / ms, 1) if ms else None}
    return {
        "wall_ms": round(1e3 * wall, 2), "kernel_ms": round(sum(times.values()), 2),
        "kernels_per_call": round(sum(counts.values()) / repeats),
        "by_type": [row(k, ms, type_flops[k]) for k, ms in by_type.most_common(top)],
        "top_nodes": [row(k, ms, node_flops[k]) for k, ms in times.most_common(top)],
    }


class PhaseMemory:
    """Peak resident set per phase: VmHWM of /proc/self/status, reset before each phase by
    writing 5 to /proc/self/clear_refs (Linux >= 4.0). Elsewhere the peak is the process's
    since its start (ru_maxrss) and the start figure is None."""

    def __init__(self):
        self.phases = {}

    @staticmethod
    def _status_gib(field):
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) / 2 ** 20         # kB -> GiB
        except OSError:
            pass
        return None

    @contextlib.contextmanager
    def phase(self, name):
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            start = self._status_gib("VmRSS")
        except OSError:
            start = None
        yield
        if start is not None:
            # The kernel syncs per-thread RSS counters into VmHWM lazily (in batches of
            # pages), so VmHWM can read a few MiB below the VmRSS seen at the phase's start or
            # end; the phase's peak is at least both.
            peak = max(self._status_gib("VmHWM"), self._status_gib("VmRSS"), start)
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
        self.phases[name] = {"start_gib": None if start is None else round(start, 2),
                             "peak_gib": round(peak, 2)}


def median_time(fn, calls, warmup=10):
    """Median seconds of `calls` calls after `warmup` untimed ones: a 10 ms call needs many
    samples on a shared machine (the mean of 3 moved by 20 % between runs)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed(fn, repeats):
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def classifier_step(config, batch, steps):
    """Seconds per train step of the B.3 classifier (its own batch size, Adam, as trained)."""
    import keras

    from amc_tf.models.classifier import build_classifier
    clf = build_classifier(config)
    clf.build()
    clf.compile(optimizer=keras.optimizers.Adam(config.clf_learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    n = config.clf_batch_size
    video = tf.repeat(batch["video"], -(-n // config.batch_size), axis=0)[:n]
    labels = tf.zeros([n], tf.int32)
    return timed(lambda: clf.train_on_batch(video, labels), max(3, steps))


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


def bench_preset(name, batch_size, steps, peak, jit=False, profile=False, model="amc-gan",
                 gen_calls=None):
    """One row. Generation is timed as the mean of `steps` calls, or with `gen_calls` as the
    median of that many (batch 8: a quarter as many)."""
    family = get_family(model)
    c = family.config(name)
    c = c.replace(batch_size=batch_size or c.batch_size, jit_compile=jit)
    memory = PhaseMemory()
    with memory.phase("build"):
        gan = family.build(c)
        batch = random_model_batch(c, c.batch_size)
    step = tf.function(gan.train_step, jit_compile=jit)
    # The step runs with the Grappler options training uses (train.graph_optimizer_options).
    with memory.phase("train_step"), graph_optimizer_options(family):
        flops = run_and_count(step, batch)
        t_step = timed(lambda: [v.numpy() for v in step(batch).values()], steps)

    g = family.generator(gan)
    # One request's conditions, as the family's `generate` takes them (family.py contract).
    one = {"motion_class": batch["motion_class"][:1],
           "noise": tf.zeros((1, *family.noise_shape(c)))}
    if family.uses_appearance:
        one["appearance"] = batch["video"][:1, 0]
    if family.uses_velocity:
        one["velocity"] = batch["velocity"][:1]
    forward = tf.function(lambda x: family.generate(g, x, c, training=False))
    with memory.phase("generate_1"):
        g_flops = run_and_count(forward, one)

        def time_generation(fn, calls):
            return median_time(fn, calls) if gen_calls else timed(fn, max(3, steps))
        t_gen = time_generation(lambda: forward(one).numpy(), gen_calls)
    achieved = flops["live"] / t_step / 1e9
    bound = g_flops["live"] / (peak * 1e9)
    forward_xla = tf.function(lambda x: family.generate(g, x, c, training=False),
                              jit_compile=True)
    with memory.phase("generate_1_xla"):
        t_gen_xla = timed(lambda: forward_xla(one).numpy(), max(3, steps))
    batch8 = {k: tf.repeat(v, 8, axis=0) for k, v in one.items()}
    with memory.phase("generate_8"):
        t_gen8 = time_generation(lambda: forward(batch8).numpy(), max(3, (gen_calls or 0) // 4))
    with memory.phase("classifier_step"):
        t_clf = classifier_step(c, batch, steps)
    extra = {"generator_profile": profile_forward(forward, one)} if profile else {}
    gflop = lambda v: None if v is None else round(v / 1e9, 3)
    return {
        "model": model, "preset": name, "batch_size": c.batch_size, "frames": c.num_frames,
        "frame_size": c.frame_size, "step_s": round(t_step, 3),
        "clips_per_s": round(c.batch_size / t_step, 2),
        "step_gflop": gflop(flops["live"]),
        "step_gflop_executed_graph": gflop(flops["executed"]),
        "step_gflop_traced": gflop(flops["traced"]), "achieved_gflops": round(achieved, 1),
        "ratio_to_peak": round(achieved / peak, 3),
        "generator_latency_ms": round(1e3 * t_gen, 1),
        "generator_gflop": gflop(g_flops["live"]),
        "generator_gflop_executed_graph": gflop(g_flops["executed"]),
        "generator_flop_bound_ms": round(1e3 * bound, 1),
        "latency_over_bound": round(t_gen / bound, 2),
        "generator_xla_latency_ms": round(1e3 * t_gen_xla, 1),
        "generator_ms_per_video_at_batch_8": round(1e3 * t_gen8 / 8, 1),
        "classifier_step_s": round(t_clf, 3),
        # The highest phase peak (ru_maxrss follows the reset high-water mark, so it cannot).
        "peak_rss_gib": max(p["peak_gib"] for p in memory.phases.values()),
        "memory_gib": memory.phases,
        **extra,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["amc-gan"],
                        help="model families (amc_tf.models.family)")
    parser.add_argument("--presets", nargs="+", default=["cpu", "paper-natops"])
    parser.add_argument("--batch-size", type=int, nargs="+", default=None,
                        help="per preset (default: cpu preset's own, 2 for paper presets)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    parser.add_argument("--gen-calls", type=int, default=None,
                        help="time generation as the median of this many calls (default: the "
                             "mean of --steps calls)")
    parser.add_argument("--profile", action="store_true",
                        help="also print where the one-video generator forward spends its time")
    args = parser.parse_args()
    peak, mm, conv = measured_peak()
    print(f"measured peak: matmul {mm:.0f} GFLOP/s, conv {conv:.0f} GFLOP/s -> {peak:.0f}")
    rows = []
    for model, (i, name) in ((m, p) for m in args.models for p in enumerate(args.presets)):
        bs = args.batch_size[i] if args.batch_size else (2 if name.startswith("paper") else None)
        row = bench_preset(name, bs, args.steps, peak, jit=args.jit, profile=args.profile,
                           model=model, gen_calls=args.gen_calls)
        row["peak_gflops"] = round(peak, 1)
        rows.append(row)
        profile = row.pop("generator_profile", None)
        print(json.dumps(row), flush=True)
        if profile:
            print(f"{model} {name} generator forward, 1 video: wall {profile['wall_ms']} ms, kernel time "
                  f"{profile['kernel_ms']} ms over {profile['kernels_per_call']} kernels")
            for title in ("by_type", "top_nodes"):
                print(f"  {title}: kernel ms, MFLOP, GFLOP/s")
                for r in profile[title]:
                    print(f"    {r['op'][:72]:72s} {r['kernel_ms']:8.3f} {r['mflop']:8.1f} "
                          f"{r['gflops'] if r['gflops'] is not None else '':>8}")
    return rows


if __name__ == "__main__":
    main()
