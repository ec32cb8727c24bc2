"""Two-replica checks: under a 2-replica MirroredStrategy over two logical CPUs each family
trains as it does on one replica (losses averaged over the global batch, synchronized BN,
spectral norms advanced in the replica context, TwoStreamVAN's curriculum drawn alike).

The logical CPUs must be configured before TensorFlow starts, so the checks run in a process of
their own; every check a pytest process selected runs in one such process (conftest's
`two_replica_results` fixture): TensorFlow's start-up is paid once, not once per family.

    python tests/two_replicas.py '[["gan_family", {"family": "g3an", "image_d_frames": 8}]]'

prints one line per check: `CHECK {"key": ..., "ok": ..., "figures": ..., "log": ...}`.
"""

import json
import sys
import traceback


def check_key(name, kwargs):
    """How a check and its arguments are named in the results."""
    return json.dumps([name, kwargs], sort_keys=True)


def _relative_gap(one_before, one_after, two_after):
    """|one-replica update - two-replica update| / |one-replica update|, over every variable."""
    import numpy as np
    update = np.concatenate([(a - z).ravel() for a, z in zip(one_after, one_before)])
    gap = np.concatenate([(a - b).ravel() for a, b in zip(one_after, two_after)])
    return float(np.linalg.norm(gap) / np.linalg.norm(update))


def _repeated_batch(family, c):
    """One seeded batch of 4 clips (classes 0-3) as the family's train step takes it, repeated."""
    import numpy as np
    import tensorflow as tf
    rng = np.random.default_rng(0)
    batch = {"video": rng.uniform(-1, 1, (4, c.num_frames, c.frame_size, c.frame_size, 3)),
             "velocity": rng.uniform(-1, 1, (4, c.num_frames - 1, c.velocity_dim)),
             "motion_class": np.array([0, 1, 2, 3], np.int32), "subject_id": np.arange(4),
             "noise": rng.standard_normal((4, *family.noise_shape(c)))}
    batch = {k: tf.constant(v.astype(np.float32) if v.dtype == np.float64 else v)
             for k, v in batch.items()}
    return tf.data.Dataset.from_tensors(batch).repeat()


def amc_gan(mirrored):
    """AMC-GAN, an Algorithm 1 step and a reconstruction warm-up step, batch 4, one replica
    against two from the same weights."""
    import keras
    import numpy as np
    import tensorflow as tf
    from amc_tf.models import get_family
    from amc_tf.models.amc_gan.config import get_preset
    from amc_tf.models.amc_gan.model import AMCGAN

    # "pairs": y' of clip i is clip i^1, the same pairing within each replica's half batch.
    c = get_preset("test").replace(batch_size=4, mismatch_mode="pairs", steps_per_epoch=1)
    ds = _repeated_batch(get_family("amc-gan"), c)

    def state_variables(gan):
        # The three networks' weights (BN statistics included) and both optimizers' state.
        nets = [gan.generator, gan.appearance_discriminator, gan.motion_discriminator]
        return [v for net in nets for v in net.weights] + \
            list(gan.g_optimizer.variables) + list(gan.d_optimizer.variables)

    def run(strategy, init=None, warmup=False):
        with strategy.scope():
            gan = AMCGAN(c)
            # SGD: the update is linear in the gradient, so it compares the averaged gradients
            # themselves (Adam's first step is lr * sign(g), ill-conditioned where g ~ 0).
            gan.compile(g_optimizer=keras.optimizers.SGD(0.1),
                        d_optimizer=keras.optimizers.SGD(0.1))
            gan.build_all()
        gan.reconstruction_warmup = warmup     # the cpu preset's G-only warm-up step
        variables = state_variables(gan)
        if init is not None:
            for v, value in zip(variables, init):
                v.assign(value)
        before = [np.array(v.numpy()) for v in variables]
        gan.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
        return before, [np.array(v.numpy()) for v in variables]

    figures = {}
    for warmup in (False, True):
        one_before, one_after = run(tf.distribute.OneDeviceStrategy("/cpu:0"), warmup=warmup)
        _, two_after = run(mirrored, init=one_before, warmup=warmup)
        # The largest gap of one variable that moved, relative to its move.
        worst = 0.0
        for a, b, z in zip(one_after, two_after, one_before):
            move = float(np.abs(a - z).max())
            if a.size > 1 and move > 1e-2:
                worst = max(worst, float(np.abs(a - b).max()) / move)
        figures["warmup" if warmup else "algorithm1"] = {
            "overall": _relative_gap(one_before, one_after, two_after), "worst": worst}
    return figures


def gan_family(mirrored, family, **config_changes):
    """One D-then-G step of a two-optimizer GAN family (`compile(g_optimizer, d_optimizer)`) at
    the test preset, batch 4, one replica against two from the same weights. Figures: the
    update's relative gap and the spectral norm vectors compared."""
    import importlib

    import keras
    import numpy as np
    import tensorflow as tf
    from amc_tf.models import get_family

    family = get_family(family)
    c = family.config("test", num_classes=4).replace(batch_size=4, **config_changes)
    module, _, name = family.model_class.partition(":")
    model_class = getattr(importlib.import_module(module), name)
    ds = _repeated_batch(family, c)

    def run(strategy, init=None):
        with strategy.scope():
            model = model_class(c)
            # SGD: the update is linear in the averaged gradient.
            model.compile(g_optimizer=keras.optimizers.SGD(0.1),
                          d_optimizer=keras.optimizers.SGD(0.1))
            model.build_all()
        variables = [v for net in model.networks() for v in net.weights]
        if init is not None:
            for v, value in zip(variables, init):
                v.assign(value)
        before = [np.array(v.numpy()) for v in variables]
        model.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
        return before, [np.array(v.numpy()) for v in variables], variables

    one_before, one_after, variables = run(tf.distribute.OneDeviceStrategy("/cpu:0"))
    _, two_after, _ = run(mirrored, init=one_before)
    # Spectral norms' u: advanced in the replica context, the same as with one replica.
    names = [v.path for v in variables]
    us = [i for i, n in enumerate(names) if n.endswith("/u")]
    for i in us:
        assert not np.allclose(one_after[i], one_before[i]), names[i]
        np.testing.assert_allclose(two_after[i], one_after[i], atol=1e-4, err_msg=names[i])
    return {"spectral_u": len(us), "overall": _relative_gap(one_before, one_after, two_after)}


def twostreamvan(mirrored, fit=False):
    """Each replica draws the curriculum's step kind from the model's step counter (a mirrored
    variable): the same kind on both. With `fit`, six steps (every kind) under the strategy:
    the trackers' kind fractions those of the global step, every variable finite."""
    import numpy as np
    import tensorflow as tf
    from amc_tf.models import get_family
    from amc_tf.models.twostreamvan.model import draw_step_kind

    family = get_family("twostreamvan")
    # Every kind within 6 steps (steps 0-1 content, 2-3 harder, 4-5 easier).
    c = family.config("test", num_classes=4).replace(
        batch_size=4, p_content=0.34, p_easier_start=0.5, p_easier_end=0.5)
    strategy = mirrored
    with strategy.scope():
        model = family.build(c)

    @tf.function
    def kinds():
        return strategy.experimental_local_results(
            strategy.run(lambda: draw_step_kind(model.step_counter, c)))

    for step in range(40):
        model.step_counter.assign(step)
        local = [int(k) for k in kinds()]
        assert local == [int(draw_step_kind(step, c))] * 2, (step, local)
    model.step_counter.assign(0)
    expected = [int(draw_step_kind(s, c)) for s in range(6)]
    assert sorted(set(expected)) == [0, 1, 2], expected
    figures = {"kinds": expected}
    if fit:
        rng = np.random.default_rng(0)
        batch = {"video": tf.constant(rng.uniform(-1, 1, (4, 8, 32, 32, 3)).astype(np.float32)),
                 "motion_class": tf.constant([0, 1, 2, 3], tf.int32)}
        logs = model.fit(tf.data.Dataset.from_tensors(batch).repeat(), epochs=1,
                         steps_per_epoch=6, verbose=0).history
        for kind, name in enumerate(("content_steps", "easier_steps", "harder_steps")):
            assert abs(logs[name][0] - expected.count(kind) / 6) < 1e-6, (name, logs[name])
            figures[name] = logs[name][0]
        assert int(model.step_counter.numpy()) == 6
        assert all(np.all(np.isfinite(v.numpy())) for v in model.variables)
    return figures


CHECKS = {"amc_gan": amc_gan, "gan_family": gan_family, "twostreamvan": twostreamvan}


def main(specs):
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    # One strategy for every check: a second MirroredStrategy in the process would allocate
    # collective instance keys the first one's ops already hold (a shape mismatch in a
    # collective, "restart your program to reset").
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    for name, kwargs in specs:
        result = {"key": check_key(name, kwargs)}
        try:
            result.update(ok=True, figures=CHECKS[name](mirrored, **kwargs), log="")
        except Exception:  # noqa: BLE001  reported to the test that asked for this check
            result.update(ok=False, figures=None, log=traceback.format_exc())
        print("CHECK", json.dumps(result), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
