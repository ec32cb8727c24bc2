"""The distribution strategy of a training run, picked from the environment, and who writes.

One machine (no TF_CONFIG, or a TF_CONFIG naming one task): MirroredStrategy over the local GPUs
(or the CPU). A cluster (TF_CONFIG naming more than one task, as Vertex AI Training sets it for a
job with a chief pool and a worker pool, or as set by hand, see docs/multi_worker.md):
MultiWorkerMirroredStrategy with NCCL all-reduce between GPUs, ring all-reduce between CPUs.

Under MultiWorkerMirroredStrategy every worker runs the same `fit` and takes part in every
collective (a checkpoint save included), but only the chief's files count: the others write
their checkpoints to a temporary directory of their own (`worker_write_dir`), removed after the
run, and write no summary, config or model. Every worker restores from the chief's directory.

Create the strategy before any other TensorFlow op runs: collective ops are configured when the
strategy is made, and the runtime refuses that once it has started.
"""

import json
import os
import shutil
import tempfile

TF_CONFIG = "TF_CONFIG"
# TF_CONFIG task types that train (an "evaluator" or "ps" task does not run fit).
_TRAINING_TASKS = ("chief", "worker")


def cluster_workers(environ=None):
    """The number of training tasks (chief + workers) TF_CONFIG names; 1 without TF_CONFIG.

    Raises ValueError naming the variable when TF_CONFIG is not the JSON TensorFlow reads."""
    raw = (os.environ if environ is None else environ).get(TF_CONFIG, "").strip()
    if not raw:
        return 1
    try:
        cluster = json.loads(raw).get("cluster") or {}
    except (ValueError, AttributeError) as e:
        raise ValueError(f"{TF_CONFIG} is not a JSON object with a 'cluster': {raw[:200]!r} "
                         f"({e})") from e
    return max(1, sum(len(cluster.get(task) or []) for task in _TRAINING_TASKS))


def choose_strategy(environ=None):
    """MultiWorkerMirroredStrategy when TF_CONFIG names more than one training task, else
    MirroredStrategy (the local GPUs, or the CPU). Call it first: see the module docstring.
    `environ` (default os.environ) decides which; TensorFlow's cluster resolver reads TF_CONFIG
    from os.environ."""
    import tensorflow as tf
    if cluster_workers(environ) <= 1:
        return tf.distribute.MirroredStrategy()
    implementation = (tf.distribute.experimental.CommunicationImplementation.NCCL
                      if tf.config.list_physical_devices("GPU") else
                      tf.distribute.experimental.CommunicationImplementation.RING)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=implementation))
    install_keras_multi_worker_fixes()
    resolver = strategy.cluster_resolver
    print(f"[train] MultiWorkerMirroredStrategy: task {resolver.task_type}:{resolver.task_id} "
          f"of {cluster_workers(environ)} workers, {strategy.num_replicas_in_sync} replicas, "
          f"{implementation.name} all-reduce; the chief writes", flush=True)
    return strategy


def is_multi_worker(strategy):
    """True under MultiWorkerMirroredStrategy with more than one worker (None: the default
    strategy, one process)."""
    import tensorflow as tf
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    spec = strategy.cluster_resolver.cluster_spec()
    return sum(spec.num_tasks(job) for job in _TRAINING_TASKS if job in spec.jobs) > 1


def is_chief(strategy):
    """Whether this process writes the run's files: always outside a cluster; under
    MultiWorkerMirroredStrategy the "chief" task, or "worker" 0 when the cluster has no chief
    (None: the default strategy, one process)."""
    return strategy is None or bool(strategy.extended.should_checkpoint)


def shard_by_data(dataset):
    """`dataset` sharded by element across workers (each worker reads every file and keeps its
    share of each global batch). Sharding by file (TensorFlow's default) fails when a split has
    fewer files than there are workers, as ExampleGen's single-file splits do. Every worker must
    produce the same sequence: shuffle with the same seed on each."""
    import tensorflow as tf
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def task_label(strategy):
    """"chief", or e.g. "worker 1": how the console names this process."""
    if is_chief(strategy):
        return "chief"
    resolver = strategy.cluster_resolver
    return f"{resolver.task_type} {resolver.task_id}"


def worker_write_dir(directory, strategy):
    """Where this process writes checkpoints: `directory` on the chief; a new local temporary
    directory on any other worker (remove it with `remove_worker_dir` when done)."""
    if is_chief(strategy):
        return directory
    resolver = strategy.cluster_resolver
    return tempfile.mkdtemp(prefix=f"amc_tf_{resolver.task_type}{resolver.task_id}_ckpt_")


def remove_worker_dir(write_dir, directory):
    """Removes a non-chief's temporary checkpoint directory (never the chief's `directory`)."""
    if write_dir != directory:
        shutil.rmtree(write_dir, ignore_errors=True)


# ---------------------------------------------------------------------- Keras 3 under MWMS
# Keras 3.15's TensorFlow trainer breaks `fit` / `evaluate` under MultiWorkerMirroredStrategy
# (keras-team/keras#20585, tensorflow/tensorflow#72388; Keras 2 worked):
# 1. `_maybe_symbolic_build` averages the first data batch across workers with one
#    `strategy.reduce` call on the whole (nested) batch: "Attempt to convert a value
#    ({'video': PerReplica...}) ... to a Tensor". It only needs the batch's shapes: this
#    replacement takes the local replica's batch instead (no collective).
# 2. `reduce_per_replica` averages every logged value across workers with
#    `strategy.reduce("MEAN", v, axis=0)`, which fails for scalars (every loss and metric):
#    "Invalid reduction dimension 0 for input with 0 dimensions". The replacement averages
#    scalars across workers with axis=None (what "mean" means for them) and leaves the rest to
#    Keras. Both are installed only when a multi-worker strategy is made (`choose_strategy`).
_KERAS_FIXED = False


def install_keras_multi_worker_fixes():
    """Installs the two replacements above in Keras' TensorFlow trainer (once per process)."""
    global _KERAS_FIXED
    if _KERAS_FIXED:
        return
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer
    from keras.src import tree

    def local_batch(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return tf.distribute.get_strategy().experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                with self.distribute_strategy.scope():
                    data_batch = tree.map_structure(local_batch, next(it))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    keras_reduce = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or \
                not tf_trainer._collective_all_reduce_multi_worker(strategy):
            return keras_reduce(values, strategy, reduction)

        def reduce(value):
            local = strategy.experimental_local_results(value)[0] \
                if isinstance(value, tf.distribute.DistributedValues) else value
            scalar = getattr(local, "shape", None) is not None and local.shape.rank == 0
            return strategy.reduce("MEAN", value, axis=None if scalar else 0)
        return tree.map_structure(reduce, values)

    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    tf_trainer.reduce_per_replica = reduce_per_replica
    _KERAS_FIXED = True
