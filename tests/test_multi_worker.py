"""Multi-worker training (issue 18): two worker processes on 127.0.0.1 under
MultiWorkerMirroredStrategy (TF_CONFIG, ring all-reduce on CPU) train AMC-GAN's `test` preset
through `train.train_model`, as the Trainers and `amc-tf train` do.

- The two workers' update equals one worker's on the same global batch (each worker keeps its
  half of every batch: DATA sharding of one seeded sequence).
- A job killed after a checkpoint resumes on both workers from the chief's checkpoint at that
  step; only the chief's files are in out_dir and the other worker's temporary checkpoint copy
  is gone.
- The B.3 classifier trains under the same workers; the chief alone writes it.
- The Vertex spec with --replica-count: a chief pool and a worker pool of the same machine.

Every process runs a script of its own (collective ops are configured at process start) with a
timeout, so a hung collective fails the test instead of hanging CI.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fixtures as testing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = 240
STEPS_PER_EPOCH = 2

SCRIPT = textwrap.dedent("""
    import json, os, sys
    args = json.loads(sys.argv[1])
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    from amc_tf.training import distribute
    strategy = distribute.choose_strategy()        # first: collectives need a fresh runtime
    import keras
    import numpy as np
    keras.config.disable_traceback_filtering()     # whole tracebacks in the test's output
    from amc_tf.models import get_family
    from amc_tf.training import train

    family = get_family("amc-gan")
    # "pairs": y' of clip i is clip i^1, the same pairing within each worker's half batch.
    config = family.config("test", num_classes=4, num_keypoints=9).replace(**args["config"])

    # The same global batches in every process: one shuffle seed, and z in the batch (drawn
    # per global batch from its index) instead of drawn inside each replica's step.
    make_model_dataset = train.make_model_dataset
    def seeded(pattern, config, batch_size, *a, **kw):
        if kw.get("shuffle", True) is False:
            return make_model_dataset(pattern, config, batch_size, *a, **kw)
        kw["seed"] = 5
        ds = make_model_dataset(pattern, config, batch_size, *a, **kw)
        return ds.enumerate().map(lambda i, b: dict(b, noise=tf.random.stateless_normal(
            [tf.shape(b["video"])[0], config.noise_dim], seed=tf.stack([i, 7]))))
    train.make_model_dataset = seeded

    def state(model):
        # Every network's weights (BN statistics included) and both optimizers' state.
        nets = [v for net in model.networks() for v in net.weights]
        return nets + list(model.g_optimizer.variables) + list(model.d_optimizer.variables)

    def save_state(model, path):
        np.savez(path, *[np.asarray(v.numpy()) for v in state(model)])

    def save_gradient_moments(model, path):
        # Adam's first moment of each network weight (empty for a weight no optimizer updates),
        # in the order of state(): after one step it is (1 - beta_1) times the all-reduced
        # gradient.
        moments = []
        for v in (v for net in model.networks() for v in net.weights):
            found = np.zeros((0,), np.float32)
            for opt in (model.g_optimizer, model.d_optimizer):
                if opt._var_key(v) in opt._trainable_variables_indices:
                    found = np.asarray(opt._momentums[opt._get_variable_index(v)].numpy())
            moments.append(found)
        np.savez(path, *moments)

    class SameStart(keras.callbacks.Callback):
        # Every process starts from the same networks (saved by the test).
        def __init__(self, path):
            super().__init__()
            self.path, self.done = path, False
        def on_train_begin(self, logs=None):
            if self.done:
                return
            self.done = True
            nets = [v for net in self.model.networks() for v in net.weights]
            with np.load(self.path) as f:
                assert len(f.files) == len(nets), (len(f.files), len(nets))
                for i, v in enumerate(nets):
                    v.assign(f[f"arr_{i}"])

    class JobKilled(keras.callbacks.Callback):
        # The whole job dies (a preemption) after the checkpoint of step `at`.
        def __init__(self, at, result):
            super().__init__()
            self.at, self.result, self.steps = at, result, 0
        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
        def on_epoch_end(self, epoch, logs=None):
            if self.steps >= self.at:
                save_state(self.model, self.result)
                print("KILLED AT", self.steps, flush=True)
                sys.stdout.flush()
                os._exit(17)

    class AfterFirstStep(keras.callbacks.Callback):
        # The state after the first step: the update of one global batch from the same start.
        def __init__(self, path):
            super().__init__()
            self.path, self.steps = path, 0
        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.steps == 1:
                save_state(self.model, self.path)
                save_gradient_moments(self.model, self.path[:-len(".npz")] + "_moments.npz")

    callbacks = []
    if args.get("first_step"):
        callbacks.append(AfterFirstStep(args["first_step"]))
    if args.get("init"):
        callbacks.append(SameStart(args["init"]))
    if args.get("kill_at"):
        callbacks.append(JobKilled(args["kill_at"], args["result"]))
    model = train.train_model(family, config, args["train"], args["eval"], args["out"],
                              steps=args["steps"], strategy=strategy, verbose=0,
                              callbacks=callbacks)
    save_state(model, args["result"])
    if args.get("classifier"):
        _, metrics = train.train_classifier(config, args["train"], args["eval"],
                                            args["classifier"], steps=2, strategy=strategy,
                                            verbose=0)
        print("CLASSIFIER", json.dumps(metrics, sort_keys=True), flush=True)
    print("CHIEF" if distribute.is_chief(strategy) else "NOT CHIEF",
          distribute.is_multi_worker(strategy), strategy.num_replicas_in_sync, flush=True)
    print("DONE", flush=True)
""")


VERTEX_ARGS = dict(project="amc-test-project", region="europe-west4",
                   pipeline_root="gs://amc-test-bucket/root",
                   raw_data_path="gs://amc-test-bucket/raw",
                   image="europe-docker.pkg.dev/amc-test-project/amc/amc-tf:0.1.0")


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _env(tmp, tf_config=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               OMP_NUM_THREADS="1", TMPDIR=str(tmp),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _run(jobs, tmp):
    """Starts one process per (args, TF_CONFIG) in `jobs` at once; waits for all (TIMEOUT_S
    each, then kills the rest); returns [(returncode, output)]."""
    procs = []
    for i, (args, tf_config) in enumerate(jobs):
        args = dict(args, config=CONFIG)
        work = tmp / f"tmp{i}"
        work.mkdir(parents=True, exist_ok=True)
        procs.append(subprocess.Popen(
            [sys.executable, "-c", SCRIPT, json.dumps(args)], cwd=ROOT, env=_env(work, tf_config),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    results = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            out, _ = proc.communicate()
            out += f"\n[test] killed after {TIMEOUT_S} s (a hung collective?)"
        results.append((proc.returncode, out))
    return results


def _cluster(ports, index):
    return {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index}}


# Ranking margins (Eq. 3) far above any perceptual distance here: every hinge term stays active.
# At the papers' margins (0.01, 0.001) some terms sit within 1e-4 of the hinge, where the
# rounding of a 2-image vs a 4-image batch could switch one off in one run and not the other.
# The gradient is the same for every active term, so the update still tests the all-reduce.
# (CI read 5 % and 9 % gaps that no run here reproduced. The likely cause was the data: the
# shuffled training sequence depended on how far Keras's peeking iterator had read ahead, see
# amc_tf.data.features.shuffled_passes and tests/test_inputs.py; docs/measurements.md.)
CONFIG = dict(batch_size=4, mismatch_mode="pairs", steps_per_epoch=STEPS_PER_EPOCH,
              rank_margin_da=10.0, rank_margin_dm=10.0)


def _initial_networks(path):
    """Every process starts from these weights (the networks of one build)."""
    import tensorflow as tf
    from amc_tf.models import get_family
    family = get_family("amc-gan")
    config = family.config("test", num_classes=4, num_keypoints=9).replace(**CONFIG)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        model = family.build(config)
    weights = [(f"{net.name}/{v.path}", v) for net in model.networks() for v in net.weights]
    np.savez(path, *[np.asarray(v.numpy()) for _, v in weights])
    with open(os.path.splitext(path)[0] + "_names.json", "w") as f:
        json.dump([name for name, _ in weights], f)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One worker for 2 steps and, at the same time, two workers for 4 steps whose job is
    killed after the step-2 checkpoint; then the same two-worker job again, resuming, and
    training the B.3 classifier for 2 steps after the model."""
    tmp = tmp_path_factory.mktemp("multi_worker")
    data = tmp / "data"
    train = testing.write_clips(str(data), 16, 4, 9, seed=0)
    evals = testing.write_clips(str(data), 4, 4, 9, seed=1, split="eval")
    init = str(tmp / "init.npz")
    _initial_networks(init)
    base = dict(train=train, eval=evals, init=init)
    multi_out = str(tmp / "multi")
    ports = _free_ports(2)
    out = {}
    first = _run([(dict(base, out=str(tmp / "single"), steps=2, result=str(tmp / "single.npz"),
                        first_step=str(tmp / "single_1.npz")), None)] +
                 [(dict(base, out=multi_out, steps=4, kill_at=2,
                        result=str(tmp / f"killed{i}.npz"),
                        first_step=str(tmp / f"killed{i}_1.npz")), _cluster(ports, i))
                  for i in range(2)], tmp / "first_run")
    out["single"], out["killed"] = first[0], first[1:]
    ports = _free_ports(2)
    out["resumed"] = _run([(dict(base, out=multi_out, steps=4, init=None,
                                 result=str(tmp / f"resumed{i}.npz"),
                                 classifier=str(tmp / "classifier")), _cluster(ports, i))
                           for i in range(2)], tmp / "resumed_run")
    out["tmp"], out["multi_out"] = tmp, multi_out
    return out


def _load(path):
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]


def _squared_gap(a, b):
    return float(np.sum((a.astype(np.float64) - b) ** 2))


def _relative_gap(ours, theirs, start=None):
    """|ours - theirs| / |ours - start| over whole lists of arrays (|ours| without start)."""
    num = sum(_squared_gap(a, b) for a, b in zip(ours, theirs))
    den = sum(_squared_gap(a, 0 if z is None else z)
              for a, z in zip(ours, start or [None] * len(ours)))
    return float(np.sqrt(num / den))


def _worst_gradients(ours, theirs, names, count=3):
    """The variables that make most of the gradients' gap, each as (its share of the gap's
    squared norm, its own relative gap, name), to say where a failure is."""
    total = sum(_squared_gap(a, b) for a, b in zip(ours, theirs))
    rows = [(round(_squared_gap(a, b) / max(total, 1e-30), 3),
             round(float(np.sqrt(_squared_gap(a, b) / max(_squared_gap(a, 0), 1e-30))), 4),
             name.split("/")[0] + "/" + "/".join(name.split("/")[-2:]))
            for a, b, name in zip(ours, theirs, names) if a.size]
    return sorted(rows, reverse=True)[:count]


def test_multi_worker_update_matches_one_worker(runs):
    """Two workers, 2 images each, give the update of one worker on the 4-image global batch
    (Adam as the family builds it).

    After the first step: the same all-reduced gradient, read from Adam's first moment (it is
    (1 - beta_1) g; the weights themselves are no measure: Adam moves each by about the
    learning rate whatever its gradient, so a weight whose true gradient is zero, a conv bias
    ahead of a BN, moves by +lr in one run and -lr in the other), Adam's whole state, and the
    same BN statistics (synchronized over the global batch). After both steps of the epoch:
    the same BN statistics, which follow the batches (a worker training on other clips shows
    there). Measured here over six runs: gradients at most 0.2 % apart (float32 summation
    order, amplified by the tiny-batch BN backward and the convLSTM recurrence), BN statistics
    at most 2e-5 after step 1 and 1e-4 after step 2."""
    code, log = runs["single"]
    assert code == 0 and "DONE" in log, log[-4000:]
    for code, log in runs["killed"]:
        assert code == 17 and "KILLED AT 2" in log, log[-4000:]
    tmp = runs["tmp"]
    before = _load(tmp / "init.npz")
    nets = len(before)
    with open(tmp / "init_names.json") as f:
        names = json.load(f)           # the variables' names, to say which part differs
    moving = [i for i, name in enumerate(names) if "/moving_" in name]
    for step in ("_1", ""):
        w0, w1 = _load(tmp / f"killed0{step}.npz"), _load(tmp / f"killed1{step}.npz")
        assert len(w0) == len(w1) == len(_load(tmp / f"single{step}.npz"))
        for a, b in zip(w0, w1):      # the replicas of a mirrored variable agree
            np.testing.assert_array_equal(a, b)

    one, two = _load(tmp / "single_1.npz"), _load(tmp / "killed0_1.npz")
    # The all-reduced gradients: Adam's moments after one step, and its whole state.
    m_one, m_two = _load(tmp / "single_1_moments.npz"), _load(tmp / "killed0_1_moments.npz")
    gradient_gap = _relative_gap(m_one, m_two)
    optimizer_gap = _relative_gap(one[nets:], two[nets:])
    # BN statistics after step 1 and step 2, as changes from the start.
    pick = lambda arrays, idx: [arrays[i] for i in idx]
    final_one, final_two = _load(tmp / "single.npz"), _load(tmp / "killed0.npz")
    moving_gap_1 = _relative_gap(pick(one, moving), pick(two, moving), pick(before, moving))
    moving_gap_2 = _relative_gap(pick(final_one, moving), pick(final_two, moving),
                                 pick(before, moving))
    figures = dict(gradient=gradient_gap, optimizer_state=optimizer_gap,
                   bn_statistics_step_1=moving_gap_1, bn_statistics_step_2=moving_gap_2,
                   gradient_by_variable=_worst_gradients(m_one, m_two, names))
    print("multi-worker vs one worker:", figures)
    assert gradient_gap < 1e-2 and optimizer_gap < 1e-2, figures
    assert moving_gap_1 < 1e-3 and moving_gap_2 < 1e-2, figures


def test_multi_worker_resumes_from_the_chiefs_checkpoint(runs):
    """The killed job, started again, resumes at step 2 on both workers from the chief's
    checkpoint and ends at step 4; the chief alone wrote out_dir."""
    logs = []
    for i, (code, log) in enumerate(runs["resumed"]):
        assert code == 0 and "DONE" in log, log[-4000:]
        assert "resumed from step 2" in log, log[-4000:]
        logs.append(log)
    assert "CHIEF True 2" in logs[0] and "NOT CHIEF True 2" in logs[1]
    assert "the chief writes the checkpoints" in logs[1]
    tmp, out = runs["tmp"], runs["multi_out"]
    r0, r1 = _load(tmp / "resumed0.npz"), _load(tmp / "resumed1.npz")
    for a, b in zip(r0, r1):
        np.testing.assert_array_equal(a, b)
    checkpoints = os.path.join(out, "checkpoints")
    import tensorflow as tf
    assert tf.train.latest_checkpoint(checkpoints).endswith("ckpt-4")
    names = set(os.listdir(checkpoints))
    assert names == {"checkpoint"} | {f"ckpt-{n}.{ext}" for n in (2, 4)
                                      for ext in ("index", "data-00000-of-00001")}, names
    assert set(os.listdir(out)) == {"checkpoints", "config.json", "generator.keras", "logs"}
    assert tf.io.gfile.glob(os.path.join(out, "logs", "train", "events*"))
    # The other worker's checkpoint copies went to its own temporary directory, removed after
    # the run (the killed run's stays: a killed process cleans nothing).
    assert not [n for n in os.listdir(tmp / "resumed_run" / "tmp1") if n.startswith("amc_tf_")]
    assert [n for n in os.listdir(tmp / "first_run" / "tmp2") if n.startswith("amc_tf_worker1")]


def test_multi_worker_classifier_trains_and_only_the_chief_writes(runs):
    """The B.3 classifier under the same two workers: both end with the same (all-reduced)
    real-clip figures, the chief alone writes its files."""
    metrics = []
    for code, log in runs["resumed"]:
        assert code == 0 and "CLASSIFIER" in log, log[-4000:]
        metrics.append(json.loads(log.split("CLASSIFIER", 1)[1].splitlines()[0]))
    assert metrics[0] == metrics[1], metrics
    assert metrics[0]["eval_clips"] == 4 and 0.0 <= metrics[0]["accuracy"] <= 1.0
    assert set(os.listdir(runs["tmp"] / "classifier")) == {
        "classifier.keras", "classifier_metrics.json", "config.json"}


def test_multi_worker_vertex_spec_replica_count(tmp_path):
    """--replica-count 3: the GAN Trainer's custom job has a chief pool (1 replica) and a worker
    pool (2) of the same GPU machine, in the compiled Vertex spec; 1 keeps the single pool; a
    bad count is refused before anything is compiled."""
    from pipeline import cli, vertex_runner
    settings = vertex_runner.VertexSettings(**VERTEX_ARGS, replica_count=3, gpu_count=2)
    pools = vertex_runner.vertex_training_args(settings)["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 2]
    assert pools[0]["machine_spec"] == pools[1]["machine_spec"] == {
        "machine_type": "a2-highgpu-1g", "accelerator_type": "NVIDIA_TESLA_A100",
        "accelerator_count": 2}
    assert pools[0]["container_spec"] == pools[1]["container_spec"] == {
        "image_uri": VERTEX_ARGS["image"]}
    single = vertex_runner.VertexSettings(**VERTEX_ARGS)
    assert [p["replica_count"] for p in
            vertex_runner.vertex_training_args(single)["worker_pool_specs"]] == [1]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="replica_count .* must be a whole number >= 1"):
            vertex_runner.VertexSettings(**VERTEX_ARGS, replica_count=bad)
    with pytest.raises(SystemExit):
        cli.main(["compile-vertex", "--project", "p", "--pipeline-root", "gs://b/r", "--raw",
                  "gs://b/raw", "--image", "i", "--replica-count", "0"])

    # The compiled spec carries both pools into the Trainer's Vertex custom job.
    out = str(tmp_path / "vertex.json")
    assert cli.main(["compile-vertex", "--project", VERTEX_ARGS["project"],
                     "--region", VERTEX_ARGS["region"],
                     "--pipeline-root", VERTEX_ARGS["pipeline_root"],
                     "--raw", VERTEX_ARGS["raw_data_path"], "--image", VERTEX_ARGS["image"],
                     "--replica-count", "2", "--output", out]) == 0
    with open(out) as f:
        job = json.load(f)
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec(),
                                 ignore_unknown_fields=True)
    blob = json.dumps(json_format.MessageToDict(spec))
    # The Trainer's custom_config (ai_platform_training_args) travels as a JSON string.
    args = _training_args(blob)
    assert [p["replica_count"] for p in args["worker_pool_specs"]] == [1, 1]
    assert all(p["machine_spec"]["machine_type"] == "a2-highgpu-1g"
               for p in args["worker_pool_specs"])


def _training_args(blob):
    """The Vertex training args inside a compiled spec (nested JSON strings unwrapped)."""
    def walk(value):
        if isinstance(value, str) and value[:1] in "{[":
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if isinstance(value, dict):
            if "worker_pool_specs" in value:
                return value
            value = list(value.values())
        if isinstance(value, list):
            for item in value:
                found = walk(item)
                if found is not None:
                    return found
        return None
    found = walk(json.loads(blob))
    assert found is not None, "no worker_pool_specs in the compiled spec"
    return found


def test_multi_worker_strategy_follows_tf_config():
    """Several training tasks in TF_CONFIG: multi-worker; none, one, or only an evaluator beside
    one worker: the single-machine strategy; a TF_CONFIG that is not JSON names itself."""
    import tensorflow as tf
    from amc_tf.training import distribute
    cluster = lambda **jobs: {"TF_CONFIG": json.dumps({"cluster": jobs,
                                                       "task": {"type": "worker", "index": 0}})}
    assert distribute.cluster_workers({}) == 1
    assert distribute.cluster_workers(cluster(worker=["a:1"])) == 1
    assert distribute.cluster_workers(cluster(worker=["a:1"], evaluator=["b:1"])) == 1
    assert distribute.cluster_workers(cluster(chief=["a:1"], worker=["b:1", "c:1"])) == 3
    with pytest.raises(ValueError, match="TF_CONFIG is not a JSON object"):
        distribute.cluster_workers({"TF_CONFIG": "chief=a:1"})
    strategy = distribute.choose_strategy(cluster(worker=["a:1"]))
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert distribute.is_chief(strategy) and not distribute.is_multi_worker(strategy)
    assert distribute.is_chief(None) and not distribute.is_multi_worker(None)


def test_multi_worker_trainer_of_another_worker_leaves_the_export_to_the_chief(tmp_path):
    """A Trainer's run_fn on a non-chief worker makes serving_model_dir exist (TFX's executor
    checks it after run_fn) and writes nothing in it; on the chief it goes on to export."""
    from types import SimpleNamespace
    from pipeline.modules import common
    worker = SimpleNamespace(extended=SimpleNamespace(should_checkpoint=False),
                             cluster_resolver=SimpleNamespace(task_type="worker", task_id=1))
    fn_args = SimpleNamespace(serving_model_dir=str(tmp_path / "worker" / "Format-Serving"))
    assert common.finish_worker(fn_args, worker) is False
    assert os.listdir(fn_args.serving_model_dir) == []
    chief = SimpleNamespace(extended=SimpleNamespace(should_checkpoint=True))
    fn_args = SimpleNamespace(serving_model_dir=str(tmp_path / "chief" / "Format-Serving"))
    assert common.finish_worker(fn_args, chief) is True
    assert not os.path.exists(fn_args.serving_model_dir)
