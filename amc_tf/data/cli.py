"""`amc-tf synth`, `amc-tf preprocess`, `amc-tf contact-sheet`.

TensorFlow and Beam are imported inside the handlers so that `amc-tf --help` stays fast.
"""

import json

from amc_tf.arguments import at_least
from amc_tf.data import datasets


def _synth(args):
    write = datasets.get(args.dataset).write_synthetic
    written = write(args.out, clips=args.clips, seed=args.seed, num_classes=args.num_classes,
                    num_subjects=args.subjects)
    subjects = sorted({clip.split("/")[0] for clip in written})
    print(f"wrote {len(written)} {args.dataset} clips of {len(subjects)} subjects to {args.out}")
    return 0


def _preprocess(args):
    from amc_tf.data import preprocess
    beam_args = list(args.beam_arg or [])
    if not any(a.startswith("--runner") or a.startswith("--direct_") for a in beam_args):
        beam_args += preprocess.beam_args_for_workers(args.workers)
    summary = preprocess.run_preprocess(
        args.dataset, args.raw, args.out, beam_args=beam_args,
        augment_copies=args.augment_copies, eval_fraction=args.eval_fraction, seed=args.seed,
        num_classes=args.num_classes, flip_probability=args.flip_probability,
        strides=args.strides, overwrite=args.overwrite)
    print(json.dumps(summary, indent=2, sort_keys=True))
    print(f"accepted {summary['accepted_clips']} clips -> {summary['examples']} examples "
          f"(train {summary['splits']['train']['examples']}, eval "
          f"{summary['splits']['eval']['examples']}); rejected {summary['rejected_clips']} "
          f"{summary['rejected_by_reason'] or ''} (see {args.out}/rejected/)")
    return 0


def _contact_sheet(args):
    from amc_tf.data import contact_sheet
    path = contact_sheet.write_contact_sheet(args.examples, args.out, num_clips=args.clips,
                                             split=args.split, dataset=args.dataset,
                                             step=args.step)
    print(f"wrote {path}")
    return 0


def register(subparsers):
    p = subparsers.add_parser(
        "synth", help="write a synthetic NATOPS-like (gestures) or MUG-like (faces) raw dataset")
    p.add_argument("dataset", choices=datasets.names())
    p.add_argument("--out", required=True, help="raw directory to write")
    p.add_argument("--clips", type=at_least(1), default=120)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-classes", type=at_least(2), default=None, help="; ".join(
        f"{name}: the first 1..{len(datasets.get(name).vocabulary)} classes (default "
        f"{datasets.get(name).default_num_classes})" for name in datasets.names()))
    p.add_argument("--subjects", type=at_least(1), default=None,
                   help="number of identities (default: from --clips, 3..20)")
    p.set_defaults(func=_synth)

    p = subparsers.add_parser(
        "preprocess", help="Beam: raw clips -> tf.Examples (B.1), split by subject")
    p.add_argument("--dataset", required=True, choices=datasets.names())
    p.add_argument("--raw", required=True,
                   help="raw directory (adapter layout, see 'Raw layouts' in README.md)")
    p.add_argument("--out", required=True,
                   help="output: Split-train/, Split-eval/, rejected/, summary.json")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a non-empty --out whole (the new output is written beside it "
                        "and swapped in when complete)")
    p.add_argument("--augment-copies", type=at_least(1), default=1,
                   help="examples per clip, each with a random flip and stride (B.1)")
    p.add_argument("--eval-fraction", type=float, default=0.2, help="share of subjects for eval")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-classes", type=at_least(2), default=None,
                   help="accept only the first N classes (default: all the raw dir declares)")
    p.add_argument("--flip-probability", type=float, default=None,
                   help="B.1 random horizontal flip (default: the dataset's, 0.5)")
    p.add_argument("--strides", type=at_least(1), nargs="+", default=None,
                   help="B.1 frame strides to draw from (default: the dataset's, 1 2 3)")
    p.add_argument("--workers", type=at_least(1), default=1,
                   help="DirectRunner workers (>1: multi-processing)")
    p.add_argument("--beam-arg", action="append", metavar="ARG",
                   help="extra Beam pipeline arg, repeatable "
                        "(e.g. --beam-arg=--runner=DataflowRunner)")
    p.set_defaults(func=_preprocess)

    p = subparsers.add_parser(
        "contact-sheet", help="PNG of a few preprocessed clips: frames in a grid, keypoints drawn")
    p.add_argument("examples", help="a preprocessed dir (or examples artifact uri)")
    p.add_argument("--out", required=True, help="PNG path")
    p.add_argument("--clips", type=at_least(1), default=6)
    p.add_argument("--split", default="train", choices=("train", "eval"))
    p.add_argument("--dataset", default=None, choices=datasets.names(),
                   help="default: from summary.json")
    p.add_argument("--step", type=at_least(1), default=4, help="show every STEP-th frame")
    p.set_defaults(func=_contact_sheet)
