"""`amc-tf train`: the motion classifier and AMC-GAN on `amc-tf preprocess` output.

No TensorFlow at import time (imports happen inside the handler).
"""

import os

PRESETS = ("paper-mug", "paper-natops", "cpu", "test")


def register(subparsers):
    p = subparsers.add_parser(
        "train", help="train the motion classifier and AMC-GAN (outside TFX)",
        description="Trains on DIR/Split-train/*.gz, samples DIR/Split-eval/*.gz. Checkpoints "
                    "in OUT/gan resume after a kill; TensorBoard logs in OUT/gan/logs.")
    p.add_argument("--preset", choices=PRESETS, default="cpu")
    p.add_argument("--data", required=True, help="amc-tf preprocess output directory")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--steps", type=int, default=None, help="GAN steps (default: the preset's)")
    p.add_argument("--classifier-steps", type=int, default=0,
                   help="also train the B.3 motion classifier for this many steps first")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--num-keypoints", type=int, default=None)
    p.add_argument("--ablation", default="none",
                   help="a Table 4 row: none, no-ya, no-ym, no-y, no-y-prime, no-da, no-dm, "
                        "no-daux, no-gaux, no-rank")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    p.add_argument("--mixed-precision", default=None, help="e.g. mixed_bfloat16")
    p.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    p.set_defaults(func=run)


def run(args):
    from amc_tf.config import get_preset
    from amc_tf.training import train

    config = get_preset(args.preset, num_classes=args.num_classes,
                        num_keypoints=args.num_keypoints, ablation=args.ablation)
    changes = {}
    if args.batch_size:
        changes["batch_size"] = args.batch_size
    if args.jit:
        changes["jit_compile"] = True
    if args.mixed_precision:
        changes["mixed_precision"] = args.mixed_precision
    if changes:
        config = config.replace(**changes)
    train_pattern = os.path.join(args.data, "Split-train", "*")
    eval_pattern = os.path.join(args.data, "Split-eval", "*")
    if args.classifier_steps:
        _, metrics = train.train_classifier(config, train_pattern, eval_pattern,
                                            os.path.join(args.out, "classifier"),
                                            args.classifier_steps)
        print(f"[train] classifier real-clip eval accuracy {metrics['accuracy']:.4f}")
    gan = train.train_gan(config, train_pattern, eval_pattern, os.path.join(args.out, "gan"),
                          steps=args.steps, resume=not args.no_resume)
    print(f"[train] generator saved to {os.path.join(args.out, 'gan', 'generator.keras')}")
    classifier_dir = os.path.join(args.out, "classifier")
    if os.path.exists(os.path.join(classifier_dir, "classifier.keras")):
        import json

        from amc_tf.models import load_classifier
        from amc_tf.training.evaluate import generated_video_accuracy
        bank = train.build_velocity_bank(train_pattern, config)
        result = generated_video_accuracy(gan.generator, load_classifier(classifier_dir),
                                          eval_pattern, config, bank)
        with open(os.path.join(args.out, "evaluation.json"), "w") as f:
            json.dump(result, f, indent=2)
        print(f"[train] eval accuracy: real clips {result['real_accuracy']:.4f}, generated "
              f"videos {result['generated_accuracy']:.4f} (ratio {result['ratio']})")
    return 0
