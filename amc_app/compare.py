"""`amc-tf compare`: several model families trained on the same preprocessed clips with the same
budget, judged by the same judges with the one metric suite, side by side.

    amc-tf compare --data DIR --models amc-gan,imaginator --preset cpu --out OUT
                   [--budget-minutes M] [--steps N] [--classifier-steps S]

OUT/judges/        the B.3 classifier and B.4 keypoint judge, trained once on DIR's real clips
                   (a later compare into the same OUT on the same data reuses them)
OUT/<model>/       the model's training output (checkpoints, logs, generator) and
                   contact_sheet.png: the same appearances (for the models that take one),
                   classes and seeds for every model
OUT/compare.md     the table: model, steps, train time, step time, generation latency, the suite
OUT/compare.json   the same figures, and every model's per-class table

No TensorFlow at import time (the handler imports it), so `amc-tf --help` stays fast.
"""

import hashlib
import json
import os
import shutil
import statistics
import time

from amc_tf.arguments import at_least, int64, positive
from amc_tf.models.family import DEFAULT_FAMILY, family_names

COMPARE_MD = "compare.md"
COMPARE_JSON = "compare.json"
JUDGES_DIR = "judges"
JUDGE_KEY_FILE = "judge_key.json"
CONTACT_SHEET = "contact_sheet.png"
LATENCY_CALLS = 10


def _callbacks():
    """The Keras callbacks of a timed run, built on first use (Keras is imported lazily)."""
    import keras

    class TimedRun(keras.callbacks.Callback):
        """Counts and times the train steps of a run that may span several `fit` calls (training
        phases), and stops it once `budget_s` seconds of training have passed."""

        def __init__(self, budget_s=None):
            super().__init__()
            self.budget_s = budget_s
            self.started = None
            self.steps = 0
            self.step_times = []
            self._t = None

        def on_train_batch_begin(self, batch, logs=None):
            self._t = time.perf_counter()
            if self.started is None:
                self.started = self._t

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            self.steps += 1
            self.step_times.append(now - self._t)
            if self.budget_s is not None and now - self.started >= self.budget_s:
                self.model.stop_training = True

        def step_time_s(self):
            """Median step time, without the first step of the run (tracing)."""
            times = self.step_times[1:] or self.step_times
            return statistics.median(times) if times else None

    return TimedRun


def judge_key(config):
    """What the judges depend on: two families whose configs agree here share them."""
    fields = {k: v for k, v in json.loads(config.to_json()).items() if k.startswith("clf_")}
    return {"num_frames": config.num_frames, "frame_size": config.judge_frame_size,
            "num_classes": config.num_classes, "preset": config.name, **fields}


def judge_dir_name(key_text):
    """A judge set's folder under OUT/judges: named by its key (a count would hand a killed
    run's folder to the next key)."""
    return "key-" + hashlib.sha256(key_text.encode()).hexdigest()[:16]


def _judges(config, data, train_pattern, eval_pattern, out, classifier_steps, style,
            keypoint_judge, cache):
    """The judges for `config`: trained once per distinct `judge_key`, reused after, also by a
    later compare into the same OUT on the same data (OUT/judges/key-<hash>/judge_key.json). A
    set is trained into `<folder>.partial` and renamed into place whole, its key written last:
    a killed run leaves only a .partial folder, which the next run trains again."""
    from amc_tf.training import train
    key = dict(judge_key(config), data=os.path.abspath(data), classifier_steps=classifier_steps,
               keypoint_judge=keypoint_judge)
    text = json.dumps(key, sort_keys=True)
    if text in cache:
        return cache[text]
    directory = os.path.join(out, JUDGES_DIR, judge_dir_name(text))
    key_path = os.path.join(directory, JUDGE_KEY_FILE)
    if os.path.isdir(directory):
        if not (os.path.exists(key_path) and open(key_path).read() == text):
            raise RuntimeError(f"{directory} holds judges whose {JUDGE_KEY_FILE} is not this "
                               f"run's key ({text}); remove the folder to train them again")
        print(f"[compare] reusing the judges in {directory}", flush=True)
        cache[text] = train.load_judges(directory)
        return cache[text]
    partial = directory + ".partial"
    shutil.rmtree(partial, ignore_errors=True)            # what a killed run left
    print(f"[compare] training the judges ({classifier_steps} B.3 classifier steps"
          f"{', B.4 keypoint judge' if keypoint_judge else ''}) in {directory}", flush=True)
    judges = train.train_judges(config, train_pattern, eval_pattern, partial, classifier_steps,
                                style.num_landmarks, keypoint_judge=keypoint_judge, verbose=0)
    with open(os.path.join(partial, JUDGE_KEY_FILE), "w") as f:
        f.write(text)
    os.rename(partial, directory)
    cache[text] = judges
    return cache[text]


def sheet_requests(eval_pattern, config, rows, seed):
    """The contact sheets' requests, the same for every model and run: the first frame of the
    `rows` eval clips of the smallest clip ids as y_a (models without an appearance input, e.g.
    G3AN, leave it unused: their rows differ from the others' from frame 0 on), class i mod C
    for row i, seed `seed + i`."""
    import numpy as np

    from amc_tf.data import features
    clips = features.first_clips(eval_pattern, config.num_keypoints, rows)
    appearance = clips[features.VIDEO][:, 0].numpy()
    n = appearance.shape[0]
    return (appearance, np.arange(n, dtype=np.int32) % config.num_classes,
            seed + np.arange(n, dtype=np.int64))


def generation_latency_s(family, generator, config, request, bank):
    """Median seconds of one batch-1 `inference.generate` call (eager, after one warm-up)."""
    from amc_tf import inference
    appearance, motion_class, seed = (r[:1] for r in request)
    times = []
    for _ in range(LATENCY_CALLS + 1):
        t = time.perf_counter()
        inference.generate(family, generator, config, appearance, motion_class, seed,
                           velocity_bank=bank)
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def classifier_steps_for(preset):
    """The B.3 classifier's steps in a pipeline run of `preset` (pipeline/configs.py), so that
    compare's judges are the pipeline's; 1000 for a preset the pipeline does not know."""
    from pipeline import configs
    settings = configs.RUN_SETTINGS.get(preset)
    return settings.classifier_train_steps if settings else 1000


def compare(data, models, preset, out, steps=None, budget_s=None, classifier_steps=None,
            keypoint_judge=True, rows=6, seed=0, verbose=0):
    """Trains, evaluates and draws each model family in `models` on `data`; returns the report
    dict (also written to OUT/compare.json, with OUT/compare.md).

    Each model trains `steps` steps (default: its preset's `train_steps`) or until `budget_s`
    seconds of training have passed, whichever comes first, from scratch.
    """
    from amc_tf import inference
    from amc_tf.data import datasets, preprocess
    from amc_tf.metrics import suite
    from amc_tf.models import get_family
    from amc_tf.training import files, train
    from amc_tf.training.evaluate import evaluate_generator
    from serving import client

    families = [get_family(m) for m in models]
    classifier_steps = classifier_steps or classifier_steps_for(preset)
    summary = files.read_examples_summary(data)
    style = datasets.get(summary["dataset"])
    train_pattern = os.path.join(preprocess.split_dir(data, "train"), "*")
    eval_pattern = os.path.join(preprocess.split_dir(data, "eval"), "*")
    # Every family's preset first (an unknown or fixed-size one is named before any work).
    configs = [family_config(f, preset, summary, style) for f in families]
    if train.first_batch(eval_pattern, configs[0], 1) is None:
        raise ValueError(f"the eval split of {data} holds no clip: nothing to compare on")
    timed_run = _callbacks()
    judges, report = {}, {"data": data, "dataset": summary["dataset"], "preset": preset,
                          "steps": steps, "budget_s": budget_s, "models": {}}
    request = None
    judge_frames = min(c.judge_frame_size for c in configs)
    for family, config in zip(families, configs):
        class_names = list(summary["class_names"])[:config.num_classes]
        classifier, keypoint, judge_metrics = _judges(
            shared_judge_config(config, preset, judge_frames), data, train_pattern,
            eval_pattern, out, classifier_steps, style, keypoint_judge, judges)
        model_dir = os.path.join(out, family.name)
        timer = timed_run(budget_s)
        print(f"[compare] training {family.name} ({preset}"
              f"{f', {budget_s:.0f} s budget' if budget_s else ''}) in {model_dir}", flush=True)
        t = time.time()
        model = train.train_model(family, config, train_pattern, eval_pattern, model_dir,
                                  steps=steps, resume=False, overwrite=True,
                                  verbose=verbose, callbacks=[timer])
        train_s = time.time() - t
        generator = family.generator(model)
        bank = train.build_velocity_bank(train_pattern, config) if family.uses_velocity \
            else None
        table = evaluate_generator(family, generator, classifier, eval_pattern, config,
                                   class_names, bank, keypoint_judge=keypoint)
        request = request or sheet_requests(eval_pattern, config, rows, seed)
        videos = inference.generate(family, generator, config, *request, velocity_bank=bank)
        sheet = client.write_contact_sheet(
            videos, os.path.join(model_dir, CONTACT_SHEET),
            row_labels=[class_names[c] for c in request[1]])
        report["models"][family.name] = {
            "title": family.title, "steps": timer.steps, "train_s": round(train_s, 1),
            "step_s": timer.step_time_s(),
            "generation_latency_s": generation_latency_s(family, generator, config, request,
                                                         bank),
            "suite": table, "judges": judge_metrics, "contact_sheet": sheet}
        print(suite.format_table(table, judges=judge_metrics), flush=True)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, COMPARE_JSON), "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
    with open(os.path.join(out, COMPARE_MD), "w") as f:
        f.write(format_markdown(report))
    return report


def family_config(family, preset, summary, style):
    return family.config(preset, num_classes=len(summary["class_names"]),
                         num_keypoints=style.num_keypoints)


def shared_judge_config(config, preset, frame_size):
    """`config` with the judge of models of `frame_size` frames, the smallest among those
    compared: one judge reads every model's videos (larger ones area-downscaled by it)."""
    from amc_tf.models.family_config import judge_sizes
    if config.judge_frame_size <= frame_size:
        return config
    return config.replace(**dict(judge_sizes(preset, frame_size), clf_frame_size=frame_size))


def real_clip_bound(report):
    """{metric: value} of the real eval clips under the B.3 judge (accuracy, IS, H(y), H(y|v)),
    from the first model's table that has them: every model of a compare shares judge and clips
    (None when no table has them)."""
    from amc_tf.metrics import suite
    pairs = ((suite.ACCURACY, suite.REAL_ACCURACY),
             (suite.INCEPTION_SCORE, suite.REAL_INCEPTION_SCORE),
             (suite.INTER_ENTROPY, suite.REAL_INTER_ENTROPY),
             (suite.INTRA_ENTROPY, suite.REAL_INTRA_ENTROPY))
    for m in report["models"].values():
        overall = m["suite"].get("overall", {})
        if all(overall.get(real) is not None for _, real in pairs):
            return {metric: overall[real] for metric, real in pairs}
    return None


def format_markdown(report):
    """compare.md: one row per model (steps, times, the suite overall), then the judges."""
    from amc_tf.metrics import suite
    models = report["models"]
    head = ["model", "steps", "train time (s)", "step (ms)", "generation (ms)"] + \
        list(suite.METRICS)
    lines = [f"# amc-tf compare: {report['dataset']} ({report['data']}), preset "
             f"{report['preset']}",
             "",
             "Budget: " + (f"{report['budget_s']:.0f} s of training per model"
                           if report["budget_s"] else "none") +
             (f", at most {report['steps']} steps" if report["steps"] else
              ", at most the preset's train_steps") +
             ". Step time: median train step after the first; generation: median batch-1 "
             f"`inference.generate` call (eager) of {LATENCY_CALLS} after a warm-up. Metrics: "
             "the suite overall on the eval split (README, \"Evaluation\").",
             "",
             "| " + " | ".join(head) + " |",
             "| " + " | ".join("---" for _ in head) + " |"]
    for name, m in models.items():
        overall = m["suite"].get("overall", {})
        ms = lambda s: f"{1000 * s:.1f}" if s is not None else suite.NOT_APPLICABLE
        cells = [name, str(m["steps"]), f"{m['train_s']:.0f}", ms(m["step_s"]),
                 ms(m["generation_latency_s"])]
        cells += [suite.format_value(overall.get(metric)) if overall.get(metric) is not None
                  else suite.NOT_APPLICABLE for metric in suite.METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    bound = real_clip_bound(report)
    if bound:
        # TwoStreamVAN's Table 2 "real" row: the judge's own figures on the real clips.
        cells = ["real clips (bound)", "", "", "", ""] + [
            suite.format_value(bound[metric]) if metric in bound else ""
            for metric in suite.METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Judges (trained once on the real clips, shared by every model whose frames "
                  "and classes agree):", ""]
    for name, m in models.items():
        judges = ", ".join(f"{k} {suite.format_value(v)}" for k, v in m["judges"].items())
        lines.append(f"- {name}: {judges}; contact sheet `{m['contact_sheet']}`")
    return "\n".join(lines) + "\n"


def run(args):
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in family_names()]
    if unknown or not models:
        raise SystemExit(f"amc-tf compare: error: unknown model(s) {unknown}; choose from "
                         f"{', '.join(family_names())}")
    twice = sorted({m for m in models if models.count(m) > 1})
    if twice:
        raise SystemExit(f"amc-tf compare: error: --models names {', '.join(twice)} more than "
                         f"once (each model trains once into OUT/<model>)")
    budget_s = 60.0 * args.budget_minutes if args.budget_minutes else None
    report = compare(args.data, models, args.preset, args.out, steps=args.steps,
                     budget_s=budget_s, classifier_steps=args.classifier_steps,
                     keypoint_judge=not args.no_keypoint_judge, rows=args.rows, seed=args.seed)
    print(format_markdown(report))
    print(f"wrote {os.path.join(args.out, COMPARE_MD)}")
    return 0


def register(subparsers):
    p = subparsers.add_parser(
        "compare", help="train several model families on the same clips, judge them alike, "
                        "and tabulate the suite side by side")
    p.add_argument("--data", required=True, help="amc-tf preprocess output (or examples uri)")
    p.add_argument("--models", default=",".join(family_names()),
                   help=f"comma-separated model families (default: all: "
                        f"{','.join(family_names())}; {DEFAULT_FAMILY} is the main model)")
    p.add_argument("--preset", default="cpu", help="the preset every model uses")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=at_least(1), default=None,
                   help="train steps per model (default: each preset's train_steps)")
    p.add_argument("--budget-minutes", type=positive(float), default=None,
                   help="wall-clock training budget per model; stops earlier than --steps")
    p.add_argument("--classifier-steps", type=at_least(1), default=None,
                   help="B.3 classifier steps (default: the pipeline's for the preset; the "
                        "judges are trained once, shared)")
    p.add_argument("--no-keypoint-judge", action="store_true",
                   help="skip B.4's keypoint judge (no keypoint accuracy)")
    p.add_argument("--rows", type=at_least(1), default=6,
                   help="contact sheet rows (eval appearances)")
    p.add_argument("--seed", type=int64, default=0)
    p.set_defaults(func=run)
