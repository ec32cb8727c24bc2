"""AMC-GAN under Keras's JAX backend: the jitted reconstruction warm-up and Algorithm 1 steps
(amc_tf.models.amc_gan.jax_step) give the TF steps' losses from the same weights and batches, and
update the variables.

The JAX side runs in a subprocess (KERAS_BACKEND must be set before Keras is imported) with
AMC_JAX_PYTHON (default: this interpreter; the locked .venv has CPU JAX, requirements/lock.txt).
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fixtures import random_model_batch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JAX_PYTHON = os.environ.get("AMC_JAX_PYTHON", sys.executable)
BATCH = 4

_JAX_SCRIPT = r"""
import json, os, sys
os.environ["KERAS_BACKEND"] = "jax"
import numpy as np
from amc_tf.models import get_family
from amc_tf.models.amc_gan.jax_step import AlgorithmOneStep, ReconstructionStep

data = np.load(sys.argv[1])
family = get_family("amc-gan")
model = family.build(family.config("test", num_classes=4, num_keypoints=9))
assert "tensorflow" not in sys.modules
variables = [v for net in model.networks() for v in net.variables]
for i, v in enumerate(variables):
    v.assign(data[f"var_{i}"])
batches = [{k[len(f"b{n}_"):]: data[k] for k in data.files if k.startswith(f"b{n}_")}
           for n in range(2)]
warmup = ReconstructionStep(model)
state, out = warmup(warmup.initial_state(), batches[0])
logs = [{k: float(v) for k, v in out.items()}]
step = AlgorithmOneStep(model)          # the state carries over from the warm-up phase
for batch in batches:
    state, out = step(state, batch)
    logs.append({k: float(v) for k, v in out.items()})
step.write_back(state)
changed = [bool(np.any(np.asarray(v.value) != data[f"var_{i}"])) for i, v in
           enumerate(variables)]
print(json.dumps({"logs": logs, "changed": changed,
                  "trainable": [v.trainable for v in variables]}))
"""


def _tf_losses(tmp_path):
    """Builds the test preset under TF, saves its weights and two batches with their draws, and
    runs one reconstruction warm-up step on the first, then the TF train_step on both:
    [{loss: value}] per step."""
    from amc_tf.models import get_family
    from amc_tf.models.amc_gan.model import draw_mismatch_indices
    family = get_family("amc-gan")
    config = family.config("test", num_classes=4, num_keypoints=9)
    model = family.build(config)
    variables = [v for net in model.networks() for v in net.variables]
    saved = {f"var_{i}": np.asarray(v.numpy()) for i, v in enumerate(variables)}
    rng = np.random.default_rng(0)
    batches = []
    for n in range(2):
        batch = {k: v.numpy() for k, v in random_model_batch(config, BATCH, seed=n).items()}
        batch["subject_id"] = np.array([0, 0, 1, 1])
        batch["index_mm_a"] = draw_mismatch_indices(batch.pop("subject_id"), "random", rng)
        batch["index_mm_m"] = draw_mismatch_indices(batch["motion_class"], "random", rng)
        saved.update({f"b{n}_{k}": v for k, v in batch.items()})
        batches.append(batch)
    logs = []
    for n, step in ((0, model.reconstruction_step), (0, model.train_step),
                    (1, model.train_step)):
        for tracker in model.metrics:
            tracker.reset_state()
        logs.append({k: float(v) for k, v in step(batches[n]).items()})
    path = tmp_path / "weights_and_batches.npz"
    np.savez(path, **saved)
    return path, logs


def test_jax_step_matches_tf_train_step(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    path, tf_logs = _tf_losses(tmp_path)
    proc = subprocess.run([JAX_PYTHON, "-c", _JAX_SCRIPT, str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["logs"]) == len(tf_logs) == 3
    for step, (tf_step, jax_step) in enumerate(zip(tf_logs, out["logs"])):
        names = ("g_loss", "l1", "l1_motion") if step == 0 else (
            "d_loss", "g_loss", "d_adv", "g_adv", "l1", "d_plus", "rank")
        for name in names:
            assert jax_step[name] == pytest.approx(tf_step[name], rel=1e-4, abs=1e-4), \
                (step, name, tf_step[name], jax_step[name])
    # Every trainable variable and the BN moving statistics moved.
    assert all(out["changed"][i] for i, t in enumerate(out["trainable"]) if t)
    assert any(c for c, t in zip(out["changed"], out["trainable"]) if not t)


def test_gpu_script_uint8_rules_are_inputs():
    """benchmarks/gpu_jax_natops.py converts videos without TF: its uint8 <-> [-1, 1] rules give
    `inputs.to_model_range` / `inputs.to_uint8`'s values exactly (rounding half to even)."""
    from amc_tf import inputs
    spec = importlib.util.spec_from_file_location(
        "gpu_jax_natops", os.path.join(ROOT, "benchmarks", "gpu_jax_natops.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    video = np.arange(256, dtype=np.uint8).reshape(1, 4, 8, 8, 1).repeat(3, axis=-1)
    np.testing.assert_array_equal(script.to_model_range(video),
                                  inputs.to_model_range(video).numpy())
    rng = np.random.default_rng(0)
    floats = np.concatenate([rng.uniform(-1.2, 1.2, 4000),
                             (np.arange(512) + 0.5) / 127.5 - 1.0]).astype(np.float32)
    np.testing.assert_array_equal(script.to_uint8(floats), inputs.to_uint8(floats).numpy())


def test_draw_mismatch_indices_follows_the_tf_rule():
    """Another clip's key where one exists (uniform over them), else the next clip; "pairs" is
    i xor 1: `mismatch_indices`'s rule, for batches that carry their draws."""
    from amc_tf.models.amc_gan.model import draw_mismatch_indices
    rng = np.random.default_rng(0)
    keys = np.array([0, 0, 1, 1, 2, 2])
    draws = np.stack([draw_mismatch_indices(keys, "random", rng) for _ in range(300)])
    assert draws.dtype == np.int32 and np.all(keys[draws] != keys)
    assert all(set(draws[:, i]) == set(np.flatnonzero(keys != keys[i])) for i in range(6))
    np.testing.assert_array_equal(draw_mismatch_indices([3, 3, 3], "random", rng), [1, 2, 0])
    np.testing.assert_array_equal(draw_mismatch_indices(keys, "pairs"), [1, 0, 3, 2, 5, 4])
