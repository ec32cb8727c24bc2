"""`amc-tf pipeline run | compile-vertex | submit-vertex` (no TensorFlow import at module load)."""

import argparse
import json
import sys

from amc_tf.arguments import at_least
from amc_tf.data import datasets
from amc_tf.models.family import DEFAULT_FAMILY, family_names
from pipeline import configs


def _run(args):
    from pipeline import local_runner
    layout = local_runner.run(
        home=args.home, model=args.model, preset=args.preset, raw_data_path=args.raw,
        dataset=args.dataset, eval_ratio_threshold=args.eval_threshold,
        beam_workers=args.beam_workers, classifier_train_steps=args.classifier_steps,
        model_train_steps=args.model_steps, enable_cache=args.cache,
        augmentation={"augment_copies": args.augment_copies,
                      "flip_probability": args.flip_probability, "strides": args.strides})
    from pipeline import results
    summary = results.run_summary(layout, configs.model_name(args.model))
    print(json.dumps(summary, indent=2))
    if "suite" in summary:
        from serving import evaluate
        print(evaluate.format_report(summary["suite"]))
    return 0


def _vertex_settings(args):
    from pipeline.vertex_runner import VertexSettings
    return VertexSettings(
        project=args.project, region=args.region, pipeline_root=args.pipeline_root,
        raw_data_path=args.raw, image=args.image, model=args.model, preset=args.preset,
        dataset=args.dataset,
        num_classes=args.num_classes, gpu_machine_type=args.gpu_machine_type,
        gpu_type=args.gpu_type, gpu_count=args.gpu_count, replica_count=args.replica_count)


def _compile_vertex(args):
    from pipeline import vertex_runner
    path = vertex_runner.compile_pipeline(_vertex_settings(args), args.output)
    print(f"wrote Vertex AI pipeline spec {path}")
    return 0


def _submit_vertex(args):
    from pipeline import vertex_runner
    if args.dry_run:
        from google.auth.credentials import AnonymousCredentials
        job = vertex_runner.build_pipeline_job(args.spec, args.project, args.region,
                                               args.pipeline_root,
                                               credentials=AnonymousCredentials())
        print(f"built (not submitted) PipelineJob {job._gca_resource.display_name!r} "
              f"in {args.project}/{args.region}, root {args.pipeline_root}")
        return 0
    job = vertex_runner.submit(args.spec, args.project, args.region, args.pipeline_root,
                               service_account=args.service_account)
    print(f"submitted {job.resource_name}")
    return 0


def _replica_count(text):
    """argparse type of --replica-count: a whole number >= 1 (1 chief + N-1 workers)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"must be a whole number >= 1 (1 chief + N-1 worker machines), got {text!r}")
    return value


def _add_model_arg(p):
    p.add_argument("--model", default=DEFAULT_FAMILY, choices=family_names(),
                   help="model family (default %(default)s)")


def _add_vertex_args(p):
    p.add_argument("--project", required=True, help="Google Cloud project id")
    p.add_argument("--region", default="us-central1")
    p.add_argument("--pipeline-root", required=True, help="gs:// root for run artifacts")


def register(subparsers):
    p = subparsers.add_parser("pipeline", help="run the TFX pipeline locally or for Vertex AI")
    sub = p.add_subparsers(dest="pipeline_command", metavar="ACTION", required=True)

    r = sub.add_parser("run", help="run on TFX's local engine (LocalDagRunner + SQLite MLMD)")
    _add_model_arg(r)
    r.add_argument("--preset", default="cpu", choices=sorted(configs.RUN_SETTINGS))
    r.add_argument("--raw", required=True, help="raw clips (e.g. from `amc-tf synth`)")
    r.add_argument("--home", required=True,
                   help="keeps pipeline_root/, metadata/ and serving_model/ of every run")
    r.add_argument("--dataset", default=configs.DATASET, choices=datasets.names())
    r.add_argument("--eval-threshold", type=float, default=None,
                   help="lowest generated/real accuracy ratio (the judge on generated videos "
                        "relative to real clips) that may be pushed; default: the preset's")
    r.add_argument("--classifier-steps", type=at_least(1), default=None)
    r.add_argument("--model-steps", type=at_least(1), default=None,
                   help="training steps of the model (default: the preset's)")
    r.add_argument("--beam-workers", type=at_least(1), default=1)
    r.add_argument("--cache", action="store_true", help="reuse unchanged components' outputs")
    augmentation = r.add_argument_group(
        "augmentation (B.1)", "default: the preset's copies with the dataset's flip and strides; "
        "none for gestures at the paper presets (the paper does not augment NATOPS)")
    augmentation.add_argument("--augment-copies", type=at_least(1), default=None,
                              help="examples per clip, each with a random flip and stride")
    augmentation.add_argument("--flip-probability", type=float, default=None)
    augmentation.add_argument("--strides", type=at_least(1), nargs="+", default=None,
                              help="frame strides to draw from, e.g. 1 2 3")
    r.set_defaults(func=_run)

    c = sub.add_parser("compile-vertex", help="compile the Vertex AI Pipelines job spec (offline)")
    _add_vertex_args(c)
    c.add_argument("--raw", required=True, help="gs:// raw clips")
    c.add_argument("--image", required=True, help="container image with amc_tf installed")
    _add_model_arg(c)
    c.add_argument("--preset", default=None, choices=sorted(configs.RUN_SETTINGS),
                   help="default: the model's paper preset (paper-natops for amc-gan and "
                        "imaginator, paper-mug for twostreamvan, paper for g3an)")
    c.add_argument("--dataset", default=configs.DATASET, choices=datasets.names())
    c.add_argument("--num-classes", type=at_least(2), default=None,
                   help="accept only the first N classes of the raw data (default: all)")
    c.add_argument("--gpu-machine-type", default="a2-highgpu-1g")
    c.add_argument("--gpu-type", default="NVIDIA_TESLA_A100")
    c.add_argument("--gpu-count", type=at_least(0), default=1)
    c.add_argument("--replica-count", type=_replica_count, default=1,
                   help="GPU machines of the GAN Trainer's Vertex job: 1 chief + N-1 workers "
                        "under MultiWorkerMirroredStrategy (default %(default)s)")
    c.add_argument("--output", default="vertex_pipeline.json")
    c.set_defaults(func=_compile_vertex)

    s = sub.add_parser("submit-vertex", help="submit a compiled spec as a Vertex PipelineJob")
    _add_vertex_args(s)
    s.add_argument("--spec", required=True, help="JSON written by compile-vertex")
    s.add_argument("--service-account", default=None)
    s.add_argument("--dry-run", action="store_true", help="build the PipelineJob, do not send")
    s.set_defaults(func=_submit_vertex)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="amc-tf pipeline")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(["pipeline"] + list(argv if argv is not None else sys.argv[1:]))
    return args.func(args)
