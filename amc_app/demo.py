"""`amc-tf demo`: the main job, end to end on the built-in synthetic gestures.

synth → TFX pipeline on the local engine (Beam ExampleGen, validation, classifier + AMC-GAN
Trainers, TFMA Evaluator, Pusher) → the pushed model served over gRPC in the TF Serving API →
one generation request per class from one appearance (or from the class and seed alone, for a
model without an appearance input) → GIFs and a contact sheet, plus the
Evaluator's metric suite (the table `amc-tf evaluate` prints): generated-video accuracy next to
the judge's real-clip accuracy, IS, H, SSIM / PSNR, classifier FID, B.4 keypoint accuracy.

The console shows the stages, each component as it runs and finishes, training progress and the
results; everything else the libraries print on stderr (TensorFlow's CUDA probing on a CPU
machine, grappler notes, Beam's option parsing, Keras's end-of-data notes) goes to
`<home>/logs/demo.log`, whose tail is shown if the run fails.
"""

import contextlib
import json
import logging
import os
import re
import sys
import time

from amc_tf.arguments import at_least
from amc_tf.models.family import DEFAULT_FAMILY, family_names


def _stage(name, started):
    now = time.time()
    print(f"[demo] {name}: {now - started:.0f} s", flush=True)
    return now


class _ComponentProgress(logging.Handler):
    """TFX's "Component X is running / is finished" log lines, echoed as progress on stdout."""

    _PATTERN = re.compile(r"^Component (\S+) is (running|finished)")

    def emit(self, record):
        match = self._PATTERN.match(record.getMessage())
        if match:
            print(f"[demo]   {match.group(1)} {match.group(2)}", file=sys.stdout, flush=True)


@contextlib.contextmanager
def _stderr_to_log(path):
    """Sends file descriptor 2 (Python, C++ and Beam worker output alike) to `path`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "a") as log:
        os.dup2(log.fileno(), 2)
        progress = _ComponentProgress()
        logging.getLogger().addHandler(progress)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            with open(path) as f:
                tail = f.readlines()[-40:]
            print(f"[demo] failed; the last lines of {path}:\n{''.join(tail)}", file=sys.stderr)
            raise
        finally:
            logging.getLogger().removeHandler(progress)
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def run(args):
    home = os.path.abspath(args.home)
    log_path = os.path.join(home, "logs", "demo.log")
    print(f"[demo] detailed log: {log_path}", flush=True)
    with _stderr_to_log(log_path):
        return _run(args, home)


def _run(args, home):
    from absl import logging as absl_logging

    from amc_tf.data import synthetic
    from pipeline import configs, local_runner, results

    absl_logging.set_verbosity(absl_logging.INFO)   # into the log; component lines echoed
    t0 = start = time.time()
    raw = os.path.join(home, "raw")
    if not os.path.isdir(raw):
        print(f"[demo] writing {args.clips} synthetic gesture clips to {raw}", flush=True)
        synthetic.write_gestures(raw, clips=args.clips, seed=args.seed,
                                 num_classes=args.num_classes)
    t0 = _stage("synthetic data", t0)

    layout = local_runner.run(home=home, model=args.model, preset=args.preset,
                              raw_data_path=raw, beam_workers=args.beam_workers)
    t0 = _stage("TFX pipeline", t0)
    from amc_tf.metrics import suite
    from serving import evaluate as evaluation
    summary = results.run_summary(layout, configs.model_name(args.model))
    overall = summary.get("evaluation", {}).get("overall", {})
    report = {
        "components": summary["components"],
        "generated_video_accuracy": overall.get(suite.ACCURACY),
        "real_clip_accuracy": overall.get(suite.REAL_ACCURACY),
        "ratio": overall.get(suite.ACCURACY_RATIO),
        "suite": {m: overall.get(m) for m in suite.METRICS},
        "judges": summary.get("suite", {}).get("judges", {}),
        "blessed": summary.get("blessed"),
        "pushed": summary.get("pushed"),
    }
    if "suite" in summary:
        print(evaluation.format_report(summary["suite"]), flush=True)
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
    print(f"[demo] generated-video accuracy {report['generated_video_accuracy']} vs real-clip "
          f"accuracy {report['real_clip_accuracy']} (ratio {report['ratio']}); total "
          f"{report['total_seconds']} s")
    return 0


def _serve_and_generate(layout, examples_uri, home, args):
    """Starts the gRPC server on the pushed model and asks it for one video per class (from one
    eval clip's first frame where the model takes an appearance)."""
    import numpy as np

    from pipeline import configs
    from serving import client, server

    out_dir = os.path.join(home, "generated")
    os.makedirs(out_dir, exist_ok=True)
    model_name = configs.model_name(args.model)
    model_server = server.start(model_base_path=layout["serving_model_dir"],
                                model_name=model_name, port=0)
    try:
        address = f"127.0.0.1:{model_server.port}"
        metadata = client.get_metadata(address, model_name=model_name)
        # Models without an appearance input (G3AN) generate from the class and seed only.
        appearance = _eval_appearance(examples_uri) \
            if "appearance" in metadata["signature_inputs"]["generate"] else None
        class_names = metadata["class_names"]
        videos = []
        outputs = {}
        for class_id, name in enumerate(class_names):
            video, _ = client.generate_video(address, appearance, class_id, seed=args.seed,
                                             model_name=model_name, metadata=metadata)
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
    """The first frame of the eval clip of the smallest clip id (the run's ExampleGen output):
    an appearance the models never trained on, the same in every run of one seed."""
    from amc_tf.data import datasets, features, preprocess
    summary = preprocess.read_summary(examples_uri)
    pattern = os.path.join(preprocess.split_dir(examples_uri, "eval"), "*")
    num_keypoints = datasets.get(summary["dataset"]).num_keypoints
    return features.first_clips(pattern, num_keypoints, 1)[features.VIDEO][0, 0].numpy()


def register(subparsers):
    p = subparsers.add_parser("demo", help="run the main job end to end (synthetic gestures)")
    p.add_argument("--home", default="demo_out", help="where every output of the demo goes")
    p.add_argument("--model", default=DEFAULT_FAMILY, choices=family_names(),
                   help="model family (default %(default)s)")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--clips", type=at_least(1), default=360, help="synthetic clips to write")
    p.add_argument("--num-classes", type=at_least(2), default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beam-workers", type=at_least(1), default=2)
    p.set_defaults(func=run)
