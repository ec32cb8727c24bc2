"""What the contact sheet shows, as figures: sharpness, the first generated frame, colour drift
(issue 14), for an exported model on preprocessed clips; any model family.

    .venv/bin/python benchmarks/bench_quality.py --home demo_out [--model amc-gan]
    .venv/bin/python benchmarks/bench_quality.py --saved-model DIR --data DIR [--split eval]
    .venv/bin/python benchmarks/bench_quality.py --model-dir DIR --model NAME --data DIR

`--model-dir`: a training output (`amc-tf train --out`, `amc-tf compare`'s OUT/<model>): its
config.json and saved generator, generating through the library (`amc_tf.inference`), which
gives the same videos as the export for the same seed.

`--home`: the main job's home (`make demo`): its latest pushed version and the ExampleGen
examples of its last run. Every clip of the split is asked for, as the Evaluator's protocol asks
(the clip's first frame if the model takes one, its class, the protocol's seed), through the
SavedModel's `generate` signature, and compared with the real clip at the clips' size (64x64):

  sharpness_ratio       mean |Laplacian| of generated frames 2..T over the real clips' frames 2..T
                        (amc_tf/metrics/sharpness.py; issue 14's target >= 0.7)
  ... by region         the same ratio within the pixels the real clip's motion sweeps (it
                        moves away from y_a there in some frame: "moving") and the rest ("static")
  first_frame_excess    mean |frame 2 - y_a| over mean |frame 3 - y_a| of the generated videos: a
                        first-frame artifact reads > 1 (the real clips' figure beside it)
  colour_drift          largest change of a channel's frame mean from frame 1, generated and real

One run prints one row; no timing is involved, so the machine's load does not move the figures.

`--round-trip 32 48` also prints the sharpness ratio of the real clips themselves after an area
downscale to each size and the bilinear upscale back to 64x64 (`amc_tf.inputs`, as the serving
graph grows smaller frames): the best a network at that size can reach.
"""

import argparse
import json
import os
import posixpath


def _from_home(home, model):
    from pipeline import configs, local_runner, results
    layout = local_runner.home_layout(home, model)
    serving_dir = layout["serving_model_dir"]
    versions = sorted((v for v in os.listdir(serving_dir) if v.isdigit()), key=int) \
        if os.path.isdir(serving_dir) else []
    if not versions:
        raise SystemExit(f"no pushed version under {serving_dir}: run the main job first")
    summary = results.run_summary(layout, configs.model_name(model))
    if "examples_uri" not in summary:
        raise SystemExit(f"no ExampleGen output recorded for {home}")
    return os.path.join(serving_dir, versions[-1]), summary["examples_uri"]


def _from_model_dir(model_dir, model, data):
    """(run, metadata) like a SavedModel's, generating with the library from a training output."""
    from amc_tf import inference
    from amc_tf.data import preprocess
    from amc_tf.models import get_family
    from amc_tf.models.saving import load_generator
    from amc_tf.training import files, train
    from serving import export
    family = get_family(model)
    with open(os.path.join(model_dir, files.CONFIG_FILE)) as f:
        config = family.config_from_json(f.read())
    generator = load_generator(model_dir, family.name)
    bank = train.build_velocity_bank(posixpath.join(preprocess.split_dir(data, "train"), "*"),
                                     config) if family.uses_velocity else None

    def run(signature, request):
        return {"video": inference.generate(family, generator, config,
                                            request.get("appearance"), request["motion_class"],
                                            request["seed"], velocity_bank=bank)}
    metadata = {"model": family.name, "preset": config.name, "num_frames": config.num_frames,
                "num_keypoints": config.num_keypoints,
                "signature_inputs": {export.GENERATE: list(family.signature_inputs())}}
    return run, metadata


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--home", help="the main job's home (latest pushed version, its examples)")
    p.add_argument("--model", default="amc-gan",
                   help="the family (with --home or --model-dir)")
    p.add_argument("--saved-model", help="an exported model version directory")
    p.add_argument("--model-dir", help="a training output directory (config.json, generator)")
    p.add_argument("--data", help="preprocessed clips (amc-tf preprocess or ExampleGen's)")
    p.add_argument("--split", default="eval")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--json", help="also write the row here")
    p.add_argument("--round-trip", type=int, nargs="+", default=[], metavar="SIZE",
                   help="also the real clips' own ratio through SIZE x SIZE frames")
    args = p.parse_args(argv)
    if args.home:
        saved_model, data = _from_home(args.home, args.model)
    elif (args.saved_model or args.model_dir) and args.data:
        saved_model, data = args.saved_model or args.model_dir, args.data
    else:
        p.error("give --home, or --saved-model / --model-dir and --data")

    import numpy as np

    import amc_tf  # noqa: F401  oneDNN on before TensorFlow loads
    from amc_tf.data import preprocess
    from amc_tf.metrics import sharpness
    from serving import evaluate, export

    if args.model_dir and not args.home:
        run, metadata = _from_model_dir(args.model_dir, args.model, data)
    else:
        run, metadata, _keep = evaluate.saved_model_runner(saved_model)
    pattern = posixpath.join(preprocess.split_dir(data, args.split), "*")
    real, generated = [], []
    for real_uint8, video, _ in evaluate.paired_videos(run, metadata, pattern, args.batch_size):
        real.append(real_uint8)
        generated.append(video)
    if not real:
        raise SystemExit(f"no clip in {pattern}")
    real, generated = np.concatenate(real), np.concatenate(generated)
    row = {"model": metadata.get("model"), "preset": metadata.get("preset"),
           "clips": int(len(real)), "saved_model": saved_model,
           **sharpness.quality_report(generated, real)}
    for size in args.round_trip:
        from amc_tf import inputs
        through = inputs.video_to_clip_size(inputs.resize_frames(inputs.to_model_range(real),
                                                                 size)).numpy()
        row[f"sharpness_ratio_real_through_{size}"] = sharpness.sharpness_ratio(through, real)
    if "appearance" not in metadata["signature_inputs"][export.GENERATE]:
        # Frame 1 is generated too: no y_a to measure the first frame against.
        for key in ("first_gap_generated", "second_gap_generated", "first_frame_excess"):
            row[key] = None
    print(f"{row['model']} ({row['preset']}), {row['clips']} {args.split} clips, "
          f"{saved_model}")
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
    print(f"  sharpness (mean |Laplacian|, frames 2..T, 64x64): generated "
          f"{fmt(row['sharpness_generated'])}, real {fmt(row['sharpness_real'])}, "
          f"ratio {fmt(row['sharpness_ratio'])}")
    print(f"  sharpness by region: static pixels {fmt(row['sharpness_ratio_static'])}, moving "
          f"pixels ({100 * row['moving_share']:.0f} % of them) "
          f"{fmt(row['sharpness_ratio_moving'])}")
    print(f"  first generated frame: |f2 - y_a| {fmt(row['first_gap_generated'])}, "
          f"|f3 - y_a| {fmt(row['second_gap_generated'])}, excess "
          f"{fmt(row['first_frame_excess'])} (real clips {fmt(row['first_frame_excess_real'])})")
    print(f"  colour drift: generated {fmt(row['colour_drift_generated'])}, real "
          f"{fmt(row['colour_drift_real'])}")
    for size in args.round_trip:
        print(f"  real clips through {size}x{size} and back: sharpness ratio "
              f"{fmt(row[f'sharpness_ratio_real_through_{size}'])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(row, f, indent=2)
    return row


if __name__ == "__main__":
    main()
