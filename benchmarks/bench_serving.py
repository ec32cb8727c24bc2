"""Serving latency and throughput: gRPC (amc-tf serve, official stubs) vs an in-process call.

    .venv/bin/python benchmarks/bench_serving.py [--model-base-path DIR | --preset cpu]
        [--requests 200] [--concurrency 4]

Without --model-base-path it exports an untrained model of --preset (same graph and cost as a
trained one). The server runs as its own process (`amc-tf serve`), as in production; the
in-process figures call the same SavedModel's `generate` signature directly (the two alternate, so
background load on a shared machine hits both alike). Prints p50/p99 latency
at batch 1, throughput at the given concurrency, and the gRPC / in-process latency ratio at batch 1.
"""

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _export(preset, directory):
    import tensorflow as tf

    from amc_tf.data import datasets
    from amc_tf.inference import VelocityBank
    from amc_tf.models import get_family
    from amc_tf.models.classifier import build_classifier
    from serving import export

    family = get_family("amc-gan")
    config = family.config(preset)
    rng = np.random.default_rng(0)
    n = 4 * config.num_classes
    bank = VelocityBank(rng.uniform(-0.5, 0.5, (n, config.num_frames - 1,
                                                2 * config.num_keypoints)),
                        np.arange(n) % config.num_classes, config.num_classes)
    tf.keras.utils.set_random_seed(0)
    export.export_serving_model(family, family.generator(family.build(config)),
                                build_classifier(config), config,
                                datasets.get("gestures").class_names(
                                    num_classes=config.num_classes),
                                os.path.join(directory, "1"), velocity_bank=bank)
    return directory


def _inputs(meta, i):
    size = meta["frame_size"]
    rng = np.random.default_rng(i)
    return {"appearance": rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8),
            "motion_class": np.array([i % meta["num_classes"]], np.int32),
            "seed": np.array([i], np.int64)}


def _measure(calls, requests, concurrency, rounds=2, warmup=5):
    """Latencies (s) of sequential batch-1 calls and requests/s with `concurrency` callers.

    The calls under comparison alternate (request by request for latency, round by round for
    throughput) so that load from other processes on a shared machine hits them alike.
    """
    for call in calls.values():
        for i in range(warmup):
            call(i)
    latencies = {name: [] for name in calls}
    names = list(calls)
    for i in range(requests):
        # Alternate which goes first, so neither always follows the other.
        for name in names if i % 2 == 0 else names[::-1]:
            t = time.perf_counter()
            calls[name](i)
            latencies[name].append(time.perf_counter() - t)
    elapsed = {name: 0.0 for name in calls}
    per_round = max(requests // rounds, concurrency)
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(call, range(per_round)))
            elapsed[name] += time.perf_counter() - start
    return ({name: np.array(v) for name, v in latencies.items()},
            {name: rounds * per_round / elapsed[name] for name in calls})


def _row(name, latencies, throughput, concurrency):
    p50, p99 = np.percentile(latencies * 1e3, [50, 99])
    print(f"{name:<12} batch 1: p50 {p50:7.2f} ms  p99 {p99:7.2f} ms | concurrency "
          f"{concurrency}: {throughput:7.1f} req/s")
    return p50


def _start_server(base, model_name):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "amc_app.cli", "serve", "--model-base-path", base,
         "--model-name", model_name, "--port", "0", "--rest-port", "-1"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"gRPC \S+:(\d+)", line)
        if match:
            return proc, int(match[1])
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("amc-tf serve did not start")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-base-path", help="TF Serving base path (<dir>/<version>/)")
    parser.add_argument("--model-name", default="amc_gan")
    parser.add_argument("--preset", default="cpu", help="preset to export when no model is given")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from serving import export, versions

    tmp = None
    base = args.model_base_path
    if base is None:
        tmp = tempfile.mkdtemp(prefix="bench_serving_")
        base = _export(args.preset, os.path.join(tmp, args.model_name))
    manager = versions.ModelManager(base, args.model_name)
    root = manager.versions_dir()
    version = max(versions.numeric_dirs(root))
    path = os.path.join(root, str(version))
    meta = export.read_metadata(path)
    print(f"model {path}: preset {meta['preset']}, T={meta['num_frames']}, "
          f"{meta['frame_size']}x{meta['frame_size']} (networks at {meta['model_frame_size']}), "
          f"{meta['num_classes']} classes; "
          f"{args.requests} requests, {os.cpu_count()} CPUs")

    proc, port = _start_server(base, args.model_name)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[
            ("grpc.max_receive_message_length", 64 << 20)])
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        requests = []
        for i in range(args.requests + 8):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = args.model_name
            request.model_spec.signature_name = "generate"
            for alias, value in _inputs(meta, i).items():
                request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
            requests.append(request)

        def grpc_call(i):
            response = stub.Predict(requests[i], timeout=120)
            return tf.make_ndarray(response.outputs["video"])

        # The same SavedModel in this process; the server idles while these run.
        fn = tf.saved_model.load(path).signatures["generate"]
        local_inputs = [_inputs(meta, i) for i in range(args.requests + 8)]

        def local_call(i):
            outputs = fn(**{k: tf.constant(v) for k, v in local_inputs[i].items()})
            return outputs["video"].numpy()

        latencies, throughput = _measure({"gRPC": grpc_call, "in-process": local_call},
                                         args.requests, args.concurrency)
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)

    g50 = _row("gRPC", latencies["gRPC"], throughput["gRPC"], args.concurrency)
    l50 = _row("in-process", latencies["in-process"], throughput["in-process"], args.concurrency)
    ratio = g50 / l50
    print(f"gRPC overhead at batch 1 (p50): {g50 - l50:.2f} ms")
    print(f"overhead ratio gRPC / in-process at batch 1 (p50): {ratio:.3f} "
          f"(target <= 1.10: {'met' if ratio <= 1.10 else 'NOT met'}); throughput ratio "
          f"{throughput['in-process'] / throughput['gRPC']:.3f}")
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
