"""AMC-GAN's paper-natops preset trained under Keras's JAX backend on one GPU (a machine without
TensorFlow), on the synthetic gestures with all 24 classes; the suite scored back here.

    prepare  (here, .venv: TF + Beam) synthetic gestures -> `amc-tf preprocess`'s TFRecords ->
             the model's inputs (`inputs.clip_to_model_inputs`) of every clip as ONE compressed
             .npz, with the evaluation's conditions of each eval clip (§3.1: z from its seed,
             y^v_m drawn from the training clips of its class, `inference.request_conditions`):
        PYTHONPATH=. .venv/bin/python benchmarks/gpu_jax_natops.py prepare --out .gpu_data
    train    (the GPU machine: JAX, no TF) the config's warm-up and Algorithm 1
             (`amc_tf.models.amc_gan.jax_step`) until --minutes of wall time (from the script's
             start) are spent less the generation's; then the eval clips generated twice, with
             the sampled and with their own velocities (`evaluation.evaluation_outputs`' two
             generations); writes OUT/figures.json, OUT/generated_sampled.npz,
             OUT/generated_own.npz. On the machine, with the Keras wheels in .whl/ and the data
             in .gpu_data/ carried (one line):
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax || exit; python3 benchmarks/gpu_jax_natops.py train --data .gpu_data/natops24.npz --out $OUT --minutes 7.5 2>&1 | tee $OUT/train.log
    score    (here, .venv) the suite's figures from the arrays: sharpness / first-frame / colour
             (`metrics.sharpness.quality_report`), SSIM / PSNR (`metrics.reconstruction`), and
             the B.3 judge (trained here on the same TFRecords, `train.train_classifier`, with
             the cpu judge's sizes at 64x64 and 32 frames) on real and generated clips
             (`metrics.suite.SuiteStats`); a markdown table and a contact sheet:
        PYTHONPATH=. .venv/bin/python benchmarks/gpu_jax_natops.py score \\
            --data .gpu_data/natops24.npz --generated OUTDIR

Stored videos are uint8: the model's [-1, 1] frames are `to_model_range` of them, checked at
prepare against `inputs.clip_to_model_inputs` (exact at paper-natops: 32 frames of 64x64, the
clips' own); the generated frames are `to_uint8` of the generator's, `inputs.to_uint8`'s rule.
"""

import argparse
import json
import os
import posixpath
import sys
import time

import numpy as np

NPZ_NAME = "natops24.npz"
GENERATED = {"sampled": "generated_sampled.npz", "own": "generated_own.npz"}
FIGURES = "figures.json"
MAX_FILE_BYTES = 15 * 2 ** 20          # the GPU machine returns files of at most 16 MB


# ---------------------------------------------------------------------- the uint8 round trip
def to_model_range(video_uint8):
    """uint8 [0, 255] -> float32 [-1, 1] (`inputs.to_model_range`, numpy or JAX arrays)."""
    return video_uint8.astype(np.float32) / 127.5 - 1.0


def to_uint8(video):
    """float [-1, 1] -> uint8, rounded half to even and clipped (`inputs.to_uint8`)."""
    return np.round(np.clip((np.asarray(video, np.float32) + 1.0) * 127.5, 0.0, 255.0)) \
        .astype(np.uint8)


def _family_config(preset, num_classes, num_keypoints, batch=None):
    from amc_tf.models import get_family
    family = get_family("amc-gan")
    config = family.config(preset, num_classes=num_classes, num_keypoints=num_keypoints)
    return family, (config if batch is None else config.replace(batch_size=batch))


# ---------------------------------------------------------------------- prepare (TF)
def _split_arrays(pattern, config):
    """Every clip of the split, sorted by clip id: the model's inputs and the clip ids."""
    from amc_tf import inputs
    from amc_tf.data import features
    parts = []
    for clips in features.make_dataset(pattern, config.num_keypoints, 64, shuffle=False,
                                       repeat=False, drop_remainder=False):
        batch = inputs.clip_to_model_inputs(clips, config)
        parts.append({"video": batch["video"].numpy(), "velocity": batch["velocity"].numpy(),
                      "motion_class": batch["motion_class"].numpy(),
                      "subject_id": batch["subject_id"].numpy(),
                      "clip_id": clips[features.CLIP_ID].numpy().astype(bytes)})
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(out["clip_id"], kind="stable")
    return {k: v[order] for k, v in out.items()}


def prepare(args):
    import amc_tf  # noqa: F401  oneDNN on before TensorFlow loads
    import tensorflow as tf

    from amc_tf import evaluation, inference, inputs
    from amc_tf.data import datasets, preprocess
    from amc_tf.training.train import build_velocity_bank

    style = datasets.get("gestures")
    raw, records = os.path.join(args.work, "raw"), os.path.join(args.work, "records")
    t = time.time()
    if not os.path.isdir(raw):
        style.write_synthetic(raw, clips=args.clips, seed=args.seed, num_classes=args.classes,
                              num_subjects=args.subjects)
    if not os.path.isdir(records):
        preprocess.run_preprocess("gestures", raw, records, augment_copies=1,
                                  eval_fraction=args.eval_fraction, seed=args.seed,
                                  num_classes=args.classes)
    summary = preprocess.read_summary(records)
    family, config = _family_config(args.preset, len(summary["class_names"]),
                                    style.num_keypoints)
    pattern = lambda split: posixpath.join(preprocess.split_dir(records, split), "*")
    out = {"class_names": np.array(summary["class_names"]), "preset": np.array(args.preset),
           "num_keypoints": np.array(config.num_keypoints)}
    for split in ("train", "eval"):
        arrays = _split_arrays(pattern(split), config)
        video = to_uint8(arrays["video"])
        exact = np.array_equal(to_model_range(video), arrays["video"])
        # The model's frames travel as uint8 where that is exact (the clips' own size and
        # frames), else as float16 (a smaller preset's resized frames: smoke tests only).
        out[f"{split}_video"] = video if exact else arrays["video"].astype(np.float16)
        for key in ("velocity", "motion_class", "subject_id", "clip_id"):
            out[f"{split}_{key}"] = arrays[key]
    # The evaluation's conditions (evaluation.evaluation_outputs): one seed per clip id, z from
    # it, y^v_m drawn from the training clips' velocity bank by class.
    bank = build_velocity_bank(pattern("train"), config)
    seed = evaluation.clip_seeds(tf.constant(out["eval_clip_id"]))
    sampled = inference.request_conditions(
        family, config, out["eval_motion_class"], seed,
        appearance=inputs.to_model_range(out["eval_video"][:, 0])
        if out["eval_video"].dtype == np.uint8 else out["eval_video"][:, 0],
        velocity_bank=bank)
    out["eval_noise"] = sampled["noise"].numpy()
    out["eval_velocity_sampled"] = sampled["velocity"].numpy()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, args.name)
    np.savez_compressed(path, **out)
    size = os.path.getsize(path)
    print(f"wrote {path}: {size / 2 ** 20:.1f} MiB, {len(out['train_clip_id'])} train + "
          f"{len(out['eval_clip_id'])} eval clips of {len(out['class_names'])} classes "
          f"({'uint8' if out['train_video'].dtype == np.uint8 else 'float16'} video "
          f"{out['train_video'].shape[1:]}), records in {records}; {time.time() - t:.0f} s")
    return 0


# ---------------------------------------------------------------------- train (JAX)
def _device_info():
    import jax
    info = {"jax": jax.__version__, "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()]}
    try:
        info["device_kind"] = jax.devices()[0].device_kind
    except Exception:  # noqa: BLE001 - informative only
        pass
    return info


def _memory():
    """The device's memory figures where JAX reports them (GPU), else {}."""
    import jax
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - CPU devices have none
        return {}
    keys = ("peak_bytes_in_use", "bytes_in_use", "bytes_limit")
    return {k: int(stats[k]) for k in keys if k in stats}


def _write_json(path, figures):
    with open(path + ".tmp", "w") as f:
        json.dump(figures, f, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)


def _savez_fitting(path, arrays, count_key_arrays):
    """np.savez_compressed, dropping trailing clips until the file fits MAX_FILE_BYTES."""
    n = len(arrays[count_key_arrays[0]])
    while n > 0:
        np.savez_compressed(path, **{k: (v[:n] if k in count_key_arrays else v)
                                     for k, v in arrays.items()})
        if os.path.getsize(path) <= MAX_FILE_BYTES:
            return n
        n = n * 3 // 4
    return 0


def train(args):
    start = time.time()
    deadline = start + args.minutes * 60.0
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax
    import jax.numpy as jnp
    import keras

    if keras.backend.backend() != "jax":
        raise SystemExit(f"train runs under KERAS_BACKEND=jax, not {keras.backend.backend()}")
    from amc_tf.models.amc_gan.jax_step import (AlgorithmOneStep, ReconstructionStep,
                                                with_draws)
    os.makedirs(args.out, exist_ok=True)
    figures_path = os.path.join(args.out, FIGURES)
    figures = {"device": _device_info(), "argv": sys.argv[1:], "keras": keras.__version__}
    print(json.dumps(figures["device"]), flush=True)

    data = dict(np.load(args.data))
    num_classes = len(data["class_names"])
    family, config = _family_config(args.preset, num_classes, int(data["num_keypoints"]),
                                    args.batch)
    if str(data["preset"]) != args.preset:
        raise SystemExit(f"{args.data} holds {data['preset']} inputs, not {args.preset}'s")
    figures.update(preset=args.preset, batch=config.batch_size, num_classes=num_classes,
                   train_clips=int(len(data["train_motion_class"])),
                   eval_clips=int(len(data["eval_motion_class"])))
    keras.utils.set_random_seed(args.seed)
    t = time.time()
    model = family.build(config)
    figures["build_s"] = round(time.time() - t, 2)
    print(f"[train] built {args.preset} (batch {config.batch_size}) in {figures['build_s']} s",
          flush=True)

    # The training clips live on the device; a step gathers its batch there.
    as_model = lambda v: to_model_range(v) if v.dtype == jnp.uint8 else v.astype(jnp.float32)
    # Arguments, not closed over: jit would embed closed-over arrays in the program.
    videos = jnp.asarray(data["train_video"])
    velocities = jnp.asarray(data["train_velocity"])
    gather = jax.jit(lambda videos, velocities, idx: {"video": as_model(videos[idx]),
                                                      "velocity": velocities[idx]})
    classes, subjects = data["train_motion_class"], data["train_subject_id"]
    rng = np.random.default_rng(args.seed)
    order, cursor = rng.permutation(len(classes)), 0

    def next_batch():
        nonlocal order, cursor
        if cursor + config.batch_size > len(order):       # shuffled passes, as tf.data's
            order, cursor = rng.permutation(len(classes)), 0
        idx = order[cursor:cursor + config.batch_size]
        cursor += config.batch_size
        host = with_draws({"motion_class": classes[idx].astype(np.int32),
                           "subject_id": subjects[idx]}, config, rng)
        return dict(host, **gather(videos, velocities, jnp.asarray(idx)))

    # The generation (family.generate, the generator's values as arguments) compiled up front
    # and timed once, so the deadline can leave it its time.
    gen_vars = model.generator.variables
    gen_batch = min(args.gen_batch, len(data["eval_motion_class"]))

    def generate(values, conditions):
        with keras.StatelessScope(state_mapping=list(zip(gen_vars, values))):
            return family.generate(model.generator, conditions, config)

    generate = jax.jit(generate)
    eval_video = data["eval_video"]

    def eval_conditions(lo, velocity_key):
        hi = min(lo + gen_batch, len(eval_video))
        pad = lambda a: np.concatenate([a, np.repeat(a[-1:], gen_batch - (hi - lo), 0)])
        return {"appearance": pad(np.asarray(as_model(jnp.asarray(eval_video[lo:hi, 0])))),
                "motion_class": pad(data["eval_motion_class"][lo:hi].astype(np.int32)),
                "velocity": pad(data[velocity_key][lo:hi]),
                "noise": pad(data["eval_noise"][lo:hi])}, hi - lo

    t = time.time()
    gen_values = [jnp.array(v.value) for v in gen_vars]
    jax.block_until_ready(generate(gen_values, eval_conditions(0, "eval_velocity_sampled")[0]))
    figures["generate_compile_s"] = round(time.time() - t, 2)
    t = time.time()
    jax.block_until_ready(generate(gen_values, eval_conditions(0, "eval_velocity_sampled")[0]))
    batches = 2 * -(-len(eval_video) // gen_batch)
    gen_reserve = batches * (time.time() - t) + args.reserve
    figures["generate_batch_s"] = round(time.time() - t, 4)
    print(f"[train] generation compiled in {figures['generate_compile_s']} s; "
          f"{figures['generate_batch_s']} s per batch of {gen_batch}", flush=True)

    def write_generated(out_dir):
        """The eval clips generated from the Keras variables' values, with the sampled and with
        their own velocities (same z), into out_dir: {kind: {clips, bytes}}."""
        os.makedirs(out_dir, exist_ok=True)
        gen_values = [jnp.array(v.value) for v in gen_vars]
        written = {}
        for kind, velocity_key in (("sampled", "eval_velocity_sampled"), ("own", "eval_velocity")):
            parts = []
            for lo in range(0, len(eval_video), gen_batch):
                conditions, n = eval_conditions(lo, velocity_key)
                parts.append(to_uint8(generate(gen_values, conditions))[:n])
            path = os.path.join(out_dir, GENERATED[kind])
            kept = _savez_fitting(path, {"video": np.concatenate(parts),
                                         "clip_id": data["eval_clip_id"]}, ("video", "clip_id"))
            written[kind] = {"clips": kept, "bytes": os.path.getsize(path)}
        return written

    # --snapshot-steps: the same generation after that many steps in all (OUT/step<N>/), so a
    # longer run is compared with a shorter budget's within one run (same data, seed, steps).
    snapshots = sorted(set(args.snapshot_steps or ()))

    # The config's phases: the reconstruction warm-up (if any), then Algorithm 1.
    phases = [(ReconstructionStep if name == "reconstruction_warmup" else AlgorithmOneStep,
               steps) for name, steps in family.training_phases(config)]
    state, steps_done, history, times = None, 0, [], {}
    stop_at = deadline - gen_reserve
    figures["phases"] = []
    for step_class, phase_steps in phases:
        if time.time() >= stop_at:
            break
        step = step_class(model)
        state = step.initial_state() if state is None else state
        batch = next_batch()
        t = time.time()
        compiled = step.jitted.lower(state, batch).compile()
        phase = {"phase": step_class.__name__, "compile_s": round(time.time() - t, 2),
                 "steps": 0}
        figures["phases"].append(phase)
        print(f"[train] {phase['phase']} compiled in {phase['compile_s']} s", flush=True)
        durations = times.setdefault(phase["phase"], [])
        logs = {}
        while time.time() < stop_at and (phase_steps is None or phase["steps"] < phase_steps):
            t = time.time()
            state, logs = compiled(state, batch)
            logs = {k: float(v) for k, v in jax.device_get(logs).items()}  # waits for the step
            durations.append(time.time() - t)
            batch = next_batch()
            phase["steps"] += 1
            steps_done += 1
            if steps_done == 1 or steps_done % args.log_every == 0:
                history.append(dict(step=steps_done, phase=phase["phase"],
                                    wall_s=round(time.time() - start, 1), **logs))
                print(f"[train] step {steps_done} {durations[-1] * 1e3:.0f} ms "
                      + " ".join(f"{k} {v:.4g}" for k, v in sorted(logs.items())
                                 if k in ("d_loss", "g_loss", "l1", "rank")), flush=True)
                figures.update(steps=steps_done, history=history, memory=_memory())
                _write_json(figures_path, figures)
            if steps_done in snapshots:
                step.write_back(state)
                snap = os.path.join(args.out, f"step{steps_done}")
                figures.setdefault("snapshots", {})[str(steps_done)] = write_generated(snap)
                print(f"[train] step {steps_done}: eval clips generated into {snap}", flush=True)
            if not all(np.isfinite(v) for v in logs.values()):
                figures["stopped"] = f"non-finite loss at step {steps_done}: {logs}"
                print(f"[train] {figures['stopped']}", flush=True)
                stop_at = 0
        history.append(dict(step=steps_done, phase=phase["phase"],
                            wall_s=round(time.time() - start, 1), **logs))
        step.write_back(state)
    for name, durations in times.items():
        if not durations:
            continue
        after = np.array(durations[1:] or durations) * 1e3   # the first call may still warm up
        figures.setdefault("step_ms", {})[name] = {
            "median": round(float(np.median(after)), 2), "mean": round(float(after.mean()), 2),
            "p10": round(float(np.percentile(after, 10)), 2),
            "p90": round(float(np.percentile(after, 90)), 2), "steps": len(durations)}
    figures.update(steps=steps_done, history=history, memory=_memory(),
                   train_end_s=round(time.time() - start, 1))
    _write_json(figures_path, figures)

    # The eval clips generated with the sampled and with their own velocities (same z).
    t = time.time()
    figures["generated"] = write_generated(args.out)
    figures.update(generate_s=round(time.time() - t, 1), total_s=round(time.time() - start, 1))
    _write_json(figures_path, figures)
    print(json.dumps({k: figures[k] for k in ("steps", "step_ms", "phases", "memory",
                                              "generated", "total_s") if k in figures}),
          flush=True)
    return 0


# ---------------------------------------------------------------------- score (TF)
def _judge(args, config, records):
    """The B.3 judge trained here on the same clips (cpu judge sizes at the model's frames),
    or the one already in --judge-dir."""
    from amc_tf.data import preprocess
    from amc_tf.models.family_config import judge_sizes
    from amc_tf.models.saving import load_classifier
    from amc_tf.training import train as training
    judge_config = config.replace(**judge_sizes("cpu" if config.name != "test" else "test",
                                                config.frame_size))
    out_dir = args.judge_dir or os.path.join(args.work, "judge")
    if os.path.exists(os.path.join(out_dir, training.CLASSIFIER_FILE)):
        from amc_tf.training.files import read_json
        return load_classifier(out_dir), read_json(
            os.path.join(out_dir, training.CLASSIFIER_METRICS_FILE)), None
    pattern = lambda split: posixpath.join(preprocess.split_dir(records, split), "*")
    t = time.time()
    classifier, metrics = training.train_classifier(judge_config, pattern("train"),
                                                    pattern("eval"), out_dir,
                                                    args.judge_steps, verbose=0)
    return classifier, metrics, time.time() - t


def score(args):
    import amc_tf  # noqa: F401  oneDNN on before TensorFlow loads
    import tensorflow as tf

    from amc_tf.metrics import reconstruction, sharpness, suite

    data = dict(np.load(args.data))
    preset = str(data["preset"])
    _, config = _family_config(preset, len(data["class_names"]), int(data["num_keypoints"]))
    records = os.path.join(args.work, "records")
    real = data["eval_video"]
    real = real if real.dtype == np.uint8 else to_uint8(real.astype(np.float32))
    generated = {k: np.load(os.path.join(args.generated, f))
                 for k, f in GENERATED.items()}
    n = min(len(g["video"]) for g in generated.values())
    for g in generated.values():
        assert list(g["clip_id"][:n]) == list(data["eval_clip_id"][:n])
    real, labels = real[:n], data["eval_motion_class"][:n]
    rows = {}
    own = generated["own"]["video"][:n]
    rows.update({f"{k}": v for k, v in sharpness.quality_report(own, real).items()})
    rows["ssim"] = float(np.mean(reconstruction.video_ssim(real, own).numpy()))
    rows["psnr"] = float(np.mean(reconstruction.video_psnr(real, own).numpy()))
    sampled = generated["sampled"]["video"][:n]
    rows.update({f"sampled_{k}": v for k, v in sharpness.quality_report(sampled, real).items()
                 if k.startswith("sharpness_ratio") or k.startswith("colour_drift_gen")})
    judge_s = None
    if not args.no_judge:
        classifier, judge_metrics, judge_s = _judge(args, config, records)
        probs = lambda video: np.concatenate([
            tf.nn.softmax(classifier(to_model_range(video[i:i + 16]), training=False)).numpy()
            for i in range(0, len(video), 16)])
        feats = lambda video: np.concatenate([
            classifier.penultimate(to_model_range(video[i:i + 16])).numpy()
            for i in range(0, len(video), 16)])
        stats = suite.SuiteStats().add({suite.PROBABILITIES: probs(sampled),
                                        suite.REAL_PROBABILITIES: probs(real),
                                        suite.GENERATED_FEATURES: feats(sampled),
                                        suite.REAL_FEATURES: feats(real)}, labels)
        for metric in (suite.ACCURACY, suite.REAL_ACCURACY, suite.ACCURACY_RATIO,
                       suite.INCEPTION_SCORE, suite.INTRA_ENTROPY, suite.CLASSIFIER_FID):
            rows[f"judge_{metric}"] = stats.value(metric)
        rows["judge_real_accuracy_all_eval"] = judge_metrics.get("accuracy")
        rows["judge_validation_accuracy"] = judge_metrics.get("validation_accuracy")
        if judge_s is not None:
            rows["judge_train_s"] = round(judge_s, 1)
    figures_path = os.path.join(args.generated, FIGURES)
    if os.path.exists(figures_path):
        with open(figures_path) as f:
            run = json.load(f)
        for name, s in run.get("step_ms", {}).items():
            rows[f"step_ms_median_{name}"] = s["median"]
        rows["steps"] = run.get("steps")
        rows["compile_s"] = [p["compile_s"] for p in run.get("phases", [])]
        rows["peak_gib"] = round(run.get("memory", {}).get("peak_bytes_in_use", 0) / 2 ** 30, 2)
    print(f"\n{n} eval clips, {preset}, generated with their own velocities (SSIM/PSNR, "
          f"quality) and sampled velocities (judge, sampled_*)\n")
    print("| figure | value |\n|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")
    if args.sheet:
        _contact_sheet(args.sheet, real, own, sampled, data, n)
    return 0


def _contact_sheet(path, real, own, sampled, data, n):
    import cv2

    from amc_tf.data.contact_sheet import render_sheet
    rows, videos = min(4, n), []
    names = data["class_names"]
    labels = []
    for i in range(rows):
        cls = names[data["eval_motion_class"][i]]
        videos += [real[i], own[i], sampled[i]]
        labels += [f"real\n{cls}", "own velocity", "sampled velocity"]
    # No keypoints on generated videos: one point far outside every frame draws nothing.
    away = np.full((len(videos), real.shape[1], 1, 2), -1e3)
    sheet = render_sheet(np.stack(videos), away, labels, step=max(1, real.shape[1] // 8))
    cv2.imwrite(path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("prepare", help="synthetic gestures -> one .npz of model inputs (TF)")
    q.add_argument("--out", required=True, help="folder of the .npz (travels to the machine)")
    q.add_argument("--name", default=NPZ_NAME)
    q.add_argument("--work", default="runs/gpu_natops", help="raw clips, TFRecords (stay here)")
    q.add_argument("--preset", default="paper-natops")
    q.add_argument("--classes", type=int, default=24)
    q.add_argument("--clips", type=int, default=336)
    q.add_argument("--subjects", type=int, default=14)
    q.add_argument("--eval-fraction", type=float, default=0.2)
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=prepare)
    q = sub.add_parser("train", help="train under KERAS_BACKEND=jax, time, generate")
    q.add_argument("--data", required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--minutes", type=float, required=True,
                   help="wall time of the whole command, generation included")
    q.add_argument("--preset", default="paper-natops")
    q.add_argument("--batch", type=int, default=16)
    q.add_argument("--gen-batch", type=int, default=16)
    q.add_argument("--reserve", type=float, default=20.0,
                   help="seconds kept free after the generation's own estimate")
    q.add_argument("--log-every", type=int, default=25)
    q.add_argument("--snapshot-steps", type=int, nargs="*",
                   help="also generate the eval clips after these numbers of steps "
                        "(OUT/step<N>/)")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=train)
    q = sub.add_parser("score", help="the suite's figures of a train run's output (TF)")
    q.add_argument("--data", required=True)
    q.add_argument("--generated", required=True, help="the train command's --out")
    q.add_argument("--work", default="runs/gpu_natops", help="prepare's --work (TFRecords)")
    q.add_argument("--judge-dir", default=None, help="a trained judge to reuse")
    q.add_argument("--judge-steps", type=int, default=3000,
                   help="3000: 0.53 real-clip accuracy over 24 classes in 5 min here")
    q.add_argument("--no-judge", action="store_true")
    q.add_argument("--sheet", default=None, help="contact sheet PNG: real / own / sampled")
    q.set_defaults(func=score)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
