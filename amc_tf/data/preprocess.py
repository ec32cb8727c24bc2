"""Beam preprocessing of raw clips into tf.Examples (appendix B.1): one code path for the CLI
(`amc-tf preprocess`) and the TFX component (`amc_tf.data.example_gen.VideoExampleGen`).

    raw dir --list--> clip refs (+ split by subject) --Reshuffle--> DecodeAndPreprocess (one clip at
    a time, streamed) --> {train, eval} serialized tf.Examples, rejected records, summary events

Bad input never stops the run: every rejected clip is counted (Beam metric `rejected_<reason>`) and
written with its reason to `rejected/rejected-*.jsonl`; `summary.json` holds the counts per split.
"""

import dataclasses
import json
import logging
import posixpath
import time
import zlib
from typing import Optional

import apache_beam as beam
import numpy as np

from amc_tf.data import adapters, clip_rules, datasets, features

SPLITS = ("train", "eval")
METRICS_NAMESPACE = "amc_tf.data"
REJECTED_DIR = "rejected"
SUMMARY_FILE = "summary.json"
# TFX's own ExampleGen file names: Split-<name>/data_tfrecord-*.gz
TFRECORD_PREFIX = "data_tfrecord"

_REJECTED, _EVENTS = "rejected", "events"


@dataclasses.dataclass(frozen=True)
class PreprocessOptions:
    """Knobs of the Beam preprocessing (also the ExampleGen's custom_config keys).

    augment_copies: examples per accepted clip, each with its own random flip and stride (B.1).
    eval_fraction: share of subjects (not clips) that go to the eval split.
    seed: makes the split and the augmentation deterministic.
    num_classes: accept the first N classes (None: all the raw dir declares, else the dataset
      style's default number; `DatasetStyle.class_names`).
    flip_probability: chance that a copy is mirrored (B.1 random horizontal flip; None: the
      dataset style's default, 0.5).
    strides: the random strides to choose from, among those that fit the clip (None: the dataset
      style's default, B.1: 1, 2 or 3).
    """
    augment_copies: int = 1
    eval_fraction: float = 0.2
    seed: int = 0
    num_classes: Optional[int] = None
    flip_probability: Optional[float] = None
    strides: Optional[tuple] = None

    def __post_init__(self):
        if self.augment_copies < 1:
            raise ValueError(f"augment_copies must be >= 1, got {self.augment_copies}")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")
        if self.flip_probability is not None and not 0.0 <= self.flip_probability <= 1.0:
            raise ValueError(f"flip_probability must be in [0, 1], got {self.flip_probability}")
        if self.strides is not None:
            if not self.strides or any(int(s) < 1 for s in self.strides):
                raise ValueError(f"strides must be positive integers, got {self.strides}")
            object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))

    def with_defaults_of(self, style):
        """These options with `style`'s augmentation defaults where they are None."""
        return dataclasses.replace(
            self,
            flip_probability=(style.flip_probability if self.flip_probability is None
                              else self.flip_probability),
            strides=style.strides if self.strides is None else self.strides)

    @classmethod
    def from_dict(cls, config):
        """From a custom_config dict; unknown keys are an error (they are usually typos)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - fields)
        if unknown:
            raise ValueError(f"unknown preprocessing option(s) {unknown}; known: {sorted(fields)}")
        config = dict(config)
        if config.get("num_classes") is not None:
            config["num_classes"] = int(config["num_classes"])
        if config.get("strides") is not None:
            config["strides"] = tuple(config["strides"])
        return cls(**config)


def split_subjects(subjects, eval_fraction, seed):
    """Subject -> split. A seeded shuffle of the sorted subjects; eval gets round(fraction * n),
    at least one subject and at least one left for train when there are two or more."""
    subjects = sorted(set(subjects))
    order = np.random.default_rng([seed, 7]).permutation(len(subjects))
    n_eval = int(round(eval_fraction * len(subjects)))
    if len(subjects) >= 2 and eval_fraction > 0:
        n_eval = min(max(n_eval, 1), len(subjects) - 1)
    else:
        n_eval = 0
    eval_set = {subjects[i] for i in order[:n_eval]}
    return {s: ("eval" if s in eval_set else "train") for s in subjects}


def plan_clips(dataset, raw_dir, options):
    """Lists the raw clips (paths only) and tags each with its split; fails on an empty dir."""
    style = datasets.get(dataset)
    refs = style.list_clips(raw_dir)
    if not refs:
        raise FileNotFoundError(f"no {dataset} clips under {raw_dir} (expected "
                                f"{style.raw_layout}); write synthetic ones with "
                                f"`amc-tf synth {dataset} --out DIR`")
    splits = split_subjects([r["subject"] for r in refs], options.eval_fraction, options.seed)
    for ref in refs:
        ref["split"] = splits[ref["subject"]]
    return refs


class DecodeAndPreprocess(beam.DoFn):
    """Decodes one raw clip and emits its augmented copies as (split, serialized tf.Example).

    Rejected clips go to the `rejected` output as {"clip", "path", "subject", "split", "reason",
    "detail"}; every outcome also goes to the `events` output for the summary.
    """

    def __init__(self, dataset, class_names, options):
        self._dataset = dataset  # the name travels to the workers, its style is looked up there
        self._class_names = list(class_names)
        self._options = options
        self._style = None

    def setup(self):
        import cv2
        cv2.setNumThreads(1)  # one clip per worker thread; Beam provides the parallelism
        self._style = datasets.get(self._dataset)

    def _count(self, name):
        beam.metrics.Metrics.counter(METRICS_NAMESPACE, name).inc()

    def process(self, ref):
        opts, style = self._options, self._style
        try:
            clip = style.load_clip(ref, self._class_names, features.NUM_FRAMES)
            anchor = style.anchor_frame(clip)
            # B.1 random stride 1-3 around the anchor, among the strides whose window fits (a MUG
            # peak too near an end for even stride 1 falls back to stride 1 with edge frames).
            strides = clip_rules.strides_that_fit(len(clip.frames), anchor, style.frames_before,
                                                  strides=opts.strides) or [1]
            outputs = []
            for copy in range(opts.augment_copies):
                rng = np.random.default_rng([opts.seed, zlib.crc32(ref["clip"].encode()), copy])
                stride = int(rng.choice(strides))
                flipped = bool(rng.random() < opts.flip_probability)
                video, points, landmarks = clip_rules.make_clip(style, clip, stride, flipped)
                clip_id = f"{ref['clip']}#{copy}:s{stride}{':flip' if flipped else ''}"
                outputs.append(clip_rules.to_example(video, points, clip.label, ref["subject"],
                                                     clip_id, landmarks))
        except adapters.RejectedClip as e:
            yield from self._reject(ref, e.reason, e.detail)
            return
        except Exception as e:  # noqa: BLE001 - one bad clip must not stop the run
            logging.exception("unexpected error on clip %s", ref["clip"])
            yield from self._reject(ref, "unexpected_error", f"{type(e).__name__}: {e}")
            return
        self._count("accepted_clips")
        # When each clip finished (ms): min/max give the processing window, free of start-up.
        beam.metrics.Metrics.distribution(METRICS_NAMESPACE, "clip_done_unix_ms").update(
            int(time.time() * 1000))
        yield beam.pvalue.TaggedOutput(_EVENTS, (ref["split"], "accepted_clips", ""))
        for serialized in outputs:
            self._count(f"examples_{ref['split']}")
            yield beam.pvalue.TaggedOutput(_EVENTS, (ref["split"], "examples", ""))
            yield ref["split"], serialized

    def _reject(self, ref, reason, detail):
        self._count(f"rejected_{reason}")
        yield beam.pvalue.TaggedOutput(_REJECTED, {
            "clip": ref["clip"], "path": ref["path"], "subject": ref["subject"],
            "split": ref["split"], "reason": reason, "detail": detail})
        yield beam.pvalue.TaggedOutput(_EVENTS, (ref["split"], "rejected", reason))


def _by_split(element, num_partitions):
    return SPLITS.index(element[0])


def summarize(counted, dataset, class_names):
    """The summary dict from [((split, kind, reason), count), ...]."""
    summary = {"dataset": dataset, "class_names": list(class_names), "accepted_clips": 0,
               "rejected_clips": 0, "examples": 0,
               "rejected_by_reason": {},
               "splits": {s: {"accepted_clips": 0, "examples": 0, "rejected": {}} for s in SPLITS}}
    for (split, kind, reason), count in counted:
        per_split = summary["splits"][split]
        if kind == "rejected":
            per_split["rejected"][reason] = per_split["rejected"].get(reason, 0) + count
            by_reason = summary["rejected_by_reason"]
            by_reason[reason] = by_reason.get(reason, 0) + count
            summary["rejected_clips"] += count
        else:
            per_split[kind] += count
            summary[kind] += count
    return summary


class PreprocessClips(beam.PTransform):
    """Raw dir -> {"train", "eval": serialized tf.Examples, "rejected": dicts, "summary": dict}."""

    def __init__(self, dataset, raw_dir, options=None):
        super().__init__()
        self._dataset = dataset
        self._style = datasets.get(dataset)
        self._raw_dir = raw_dir
        self._options = (options or PreprocessOptions()).with_defaults_of(self._style)

    def expand(self, pbegin):
        opts = self._options
        names = self._style.class_names(self._raw_dir, opts.num_classes)
        refs = plan_clips(self._dataset, self._raw_dir, opts)
        results = (
            pbegin
            | "ListClips" >> beam.Create(refs)
            # Spread clips over workers: each is decoded where it lands, one at a time.
            | "Distribute" >> beam.Reshuffle()
            | "DecodeAndPreprocess" >> beam.ParDo(
                DecodeAndPreprocess(self._dataset, names, opts)).with_outputs(
                    _REJECTED, _EVENTS, main="examples"))
        train, eval_ = results.examples | "BySplit" >> beam.Partition(_by_split, len(SPLITS))
        dataset = self._dataset
        summary = (results[_EVENTS]
                   | "CountEvents" >> beam.combiners.Count.PerElement()
                   | "Gather" >> beam.combiners.ToList()
                   | "Summarize" >> beam.Map(lambda counted: summarize(counted, dataset, names)))
        return {
            "train": train | "TrainRecords" >> beam.Map(lambda kv: kv[1]),
            "eval": eval_ | "EvalRecords" >> beam.Map(lambda kv: kv[1]),
            "rejected": results[_REJECTED],
            "summary": summary,
        }


def _write_summary(summary, path):
    from apache_beam.io.filesystems import FileSystems
    with FileSystems.create(path) as f:
        f.write(json.dumps(summary, indent=2, sort_keys=True).encode())
    logging.info("preprocessing summary: %s", json.dumps(summary, sort_keys=True))


class WriteRejectedAndSummary(beam.PTransform):
    """Writes `rejected/rejected-*.jsonl` and `summary.json` under `out_dir`."""

    def __init__(self, out_dir):
        super().__init__()
        self._out_dir = out_dir

    def expand(self, outputs):
        rejected_prefix = posixpath.join(self._out_dir, REJECTED_DIR, "rejected")
        (outputs["rejected"]
         | "RejectedToJson" >> beam.Map(lambda r: json.dumps(r, sort_keys=True))
         | "WriteRejected" >> beam.io.WriteToText(rejected_prefix, file_name_suffix=".jsonl"))
        summary_path = posixpath.join(self._out_dir, SUMMARY_FILE)
        return outputs["summary"] | "WriteSummary" >> beam.Map(_write_summary, summary_path)


def split_dir(out_dir, split):
    return posixpath.join(out_dir, f"Split-{split}")


def read_summary(out_dir):
    """The `summary.json` of a preprocessed dir or ExampleGen examples uri (any Beam filesystem):
    its "dataset" and "class_names" are what the Trainers need to read the examples."""
    from apache_beam.io.filesystems import FileSystems
    path = FileSystems.join(out_dir, SUMMARY_FILE)
    if not FileSystems.exists(path):
        raise FileNotFoundError(f"{path} does not exist: {out_dir} is not the output of a "
                                f"finished `amc-tf preprocess` or VideoExampleGen run")
    try:
        summary = json.loads(adapters.read_bytes(path))
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    missing = [key for key in ("dataset", "class_names") if key not in summary]
    if missing:
        raise ValueError(f"{path} lacks {missing}")
    return summary


def read_rejected(out_dir):
    """All rejected records under `out_dir` (a list of dicts)."""
    records = []
    for path in adapters._match(posixpath.join(out_dir, REJECTED_DIR, "rejected*.jsonl")):
        records += [json.loads(line) for line in adapters.read_bytes(path).decode().splitlines()
                    if line.strip()]
    return records


def build_pipeline(pipeline, dataset, raw_dir, out_dir, options):
    """Adds preprocessing and all writes to `pipeline` (the CLI's; the component writes splits
    through TFX's WriteSplit instead, with the same transforms upstream)."""
    outputs = pipeline | "PreprocessClips" >> PreprocessClips(dataset, raw_dir, options)
    for split in SPLITS:
        (outputs[split]
         | f"Write[{split}]" >> beam.io.WriteToTFRecord(
             posixpath.join(split_dir(out_dir, split), TFRECORD_PREFIX),
             file_name_suffix=".gz"))
    outputs | "WriteRejectedAndSummary" >> WriteRejectedAndSummary(out_dir)


def beam_args_for_workers(workers):
    """DirectRunner args: in-process for 1 worker, multi-processing for more."""
    if workers <= 1:
        return ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
    return [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]


def run_preprocess(dataset, raw_dir, out_dir, beam_args=None, **options):
    """Runs the preprocessing pipeline and returns the summary dict (also in out_dir/summary.json).

    beam_args: Beam pipeline args (default: DirectRunner in-process; e.g. multi-processing with
      `beam_args_for_workers(2)`, or Dataflow's `--runner=DataflowRunner --project=...`).
    options: PreprocessOptions fields (augment_copies, eval_fraction, seed, num_classes, ...).
    """
    from apache_beam.options.pipeline_options import PipelineOptions
    opts = options.pop("options", None) or PreprocessOptions.from_dict(options)
    args = list(beam_args) if beam_args is not None else beam_args_for_workers(1)
    with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
        build_pipeline(pipeline, dataset, raw_dir, out_dir, opts)
    return read_summary(out_dir)
