"""`amc-tf demo`: the main job, end to end on the built-in synthetic gestures.

synth → TFX pipeline on the local engine (Beam ExampleGen, validation, classifier + AMC-GAN
Trainers, TFMA Evaluator, Pusher) → the pushed model served over gRPC in the TF Serving API →
one generation request per class from one appearance → GIFs and a contact sheet, plus the
Evaluator's generated-video accuracy next to the classifier's real-clip accuracy.
"""

import json
import os
import time


def _stage(name, started):
    now = time.time()
    print(f"[demo] {name}: {now - started:.0f} s", flush=True)
    return now


def run(args):
    from amc_tf.data import synthetic
    from pipeline import local_runner, results

    t0 = start = time.time()
    home = os.path.abspath(args.home)
    raw = os.path.join(home, "raw")
    if not os.path.isdir(raw):
        print(f"[demo] writing {args.clips} synthetic gesture clips to {raw}", flush=True)
        synthetic.write_gestures(raw, clips=args.clips, seed=args.seed,
                                 num_classes=args.num_classes)
    t0 = _stage("synthetic data", t0)

    layout = local_runner.run(home=home, preset=args.preset, raw_data_path=raw,
                              beam_workers=args.beam_workers)
    t0 = _stage("TFX pipeline", t0)
    summary = results.run_summary(layout)
    overall = summary.get("evaluation", {}).get("overall", {})
    generated_acc = overall.get("sparse_categorical_accuracy")
    real_acc = summary.get("classifier", {}).get("accuracy")
    report = {
        "components": summary["components"],
        "generated_video_accuracy": generated_acc,
        "real_clip_accuracy": real_acc,
        "ratio": (generated_acc / real_acc) if generated_acc is not None and real_acc else None,
        "inception_score": overall.get("inception_score"),
        "h_y": overall.get("inter_entropy_h_y"),
        "h_y_given_v": overall.get("intra_entropy_h_y_given_v"),
        "blessed": summary.get("blessed"),
        "pushed": summary.get("pushed"),
    }
    versions = sorted(os.listdir(layout["serving_model_dir"])) \
        if os.path.isdir(layout["serving_model_dir"]) else []
    if versions:
        report["outputs"] = _serve_and_generate(layout, summary["examples_uri"], home, args)
        t0 = _stage("serve + gRPC generation", t0)
    else:
        print("[demo] no model was pushed (not blessed): nothing to serve", flush=True)
    report["total_seconds"] = round(time.time() - start, 1)
    with open(os.path.join(home, "demo_report.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))
    print(f"[demo] generated-video accuracy {generated_acc} vs real-clip accuracy {real_acc}"
          f" (ratio {report['ratio']}); total {report['total_seconds']} s")
    return 0


def _serve_and_generate(layout, examples_uri, home, args):
    """Starts the gRPC server on the pushed model and asks it for one video per class."""
    import numpy as np

    from serving import client, server

    out_dir = os.path.join(home, "generated")
    os.makedirs(out_dir, exist_ok=True)
    model_server = server.start(model_base_path=layout["serving_model_dir"],
                                model_name="amc_gan", port=0)
    try:
        address = f"127.0.0.1:{model_server.port}"
        appearance = _eval_appearance(examples_uri)
        metadata = client.get_metadata(address, model_name="amc_gan")
        class_names = metadata["class_names"]
        videos = []
        outputs = {}
        for class_id, name in enumerate(class_names):
            video, _ = client.generate_video(address, appearance, class_id, seed=args.seed,
                                             metadata=metadata)
            path = os.path.join(out_dir, f"{class_id:02d}_{name}.gif")
            client.write_gif(video, path)
            outputs[name] = path
            videos.append(video)
        sheet = os.path.join(out_dir, "contact_sheet.png")
        client.write_contact_sheet(np.stack(videos), sheet, row_labels=class_names)
        outputs["contact_sheet"] = sheet
        return outputs
    finally:
        model_server.stop(grace=5)


def _eval_appearance(examples_uri):
    """The first frame of one eval clip (the run's ExampleGen output): an appearance the models
    never trained on."""
    import glob

    import tensorflow as tf

    from amc_tf.data import features
    files = sorted(glob.glob(os.path.join(examples_uri, "Split-eval", "*")))
    record = next(iter(tf.data.TFRecordDataset(files[:1], compression_type="GZIP")))
    parsed = features.parse_examples(tf.reshape(record, [1]), features.NUM_KEYPOINTS["gestures"])
    return parsed[features.VIDEO][0, 0].numpy()


def register(subparsers):
    p = subparsers.add_parser("demo", help="run the main job end to end (synthetic gestures)")
    p.add_argument("--home", default="demo_out", help="where every output of the demo goes")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--clips", type=int, default=360, help="synthetic clips to write")
    p.add_argument("--num-classes", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beam-workers", type=int, default=2)
    p.set_defaults(func=run)
