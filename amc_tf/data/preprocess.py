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
import os
import posixpath
import shutil
import time
import uuid
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
    """Lists the raw clips (paths only) and tags each with its split; fails on a dir without a
    single clip in the layout.

    Splits come from the subjects of the well-placed clips; a data file at an unexpected depth
    (rejected as `unexpected_layout`) takes its subject's split, or "train" if that subject has
    no clip (e.g. files at RAW's top level, subject "").
    """
    style = datasets.get(dataset)
    refs = style.list_clips(raw_dir)
    placed = [r for r in refs if not r.get("layout_error")]
    if not placed:
        misplaced = [r["path"] for r in refs]
        raise FileNotFoundError(
            f"no {dataset} clips under {raw_dir} (expected {style.raw_layout})"
            + (f"; {len(misplaced)} data file groups at other depths, e.g. {misplaced[:3]}"
               if misplaced else "")
            + f"; write synthetic ones with `amc-tf synth {dataset} --out DIR`")
    splits = split_subjects([r["subject"] for r in placed], options.eval_fraction, options.seed)
    for ref in refs:
        ref["split"] = splits.get(ref["subject"], "train")
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

    def _copies(self, ref, clip):
        """[(stride, flipped)] of each augmented copy: B.1 random stride 1-3 around the anchor,
        among the strides whose window fits (a MUG peak too near an end for even stride 1 falls
        back to stride 1 with edge frames), and a random flip; seeded by the clip id."""
        opts, style = self._options, self._style
        strides = clip_rules.strides_that_fit(clip.num_frames, style.anchor_frame(clip),
                                              style.frames_before, strides=opts.strides) or [1]
        copies = []
        for copy in range(opts.augment_copies):
            rng = np.random.default_rng([opts.seed, zlib.crc32(ref["clip"].encode()), copy])
            stride = int(rng.choice(strides))
            copies.append((stride, bool(rng.random() < opts.flip_probability)))
        return copies

    def _examples(self, ref):
        style = self._style
        # Annotations and headers only: every check that needs no pixels comes first.
        clip = style.load_clip(ref, self._class_names, features.NUM_FRAMES, lazy=True)
        copies = self._copies(ref, clip)
        for stride, _ in copies:
            adapters.check_crop_box(clip_rules.crop_window(style, clip, stride)[1],
                                    clip.frames.shape, ref["path"])
        outputs = []
        made = clip_rules.make_clips(style, clip, copies)
        for copy, ((stride, flipped), (video, points, landmarks)) in enumerate(zip(copies, made)):
            check_finite(points, landmarks, ref["path"])
            clip_id = f"{ref['clip']}#{copy}:s{stride}{':flip' if flipped else ''}"
            outputs.append(clip_rules.to_example(video, points, clip.label, ref["subject"],
                                                 clip_id, landmarks))
        return outputs

    def process(self, ref):
        try:
            outputs = self._examples(ref)
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


def check_finite(points, landmarks, path):
    """The last guard before an example is written: keypoints, landmarks and velocity finite."""
    velocity = clip_rules.velocity(points.astype(np.float64))
    for name, values in ((features.KEYPOINTS, points), (features.LANDMARKS, landmarks),
                         (features.VELOCITY, velocity)):
        if not np.isfinite(values).all():
            raise adapters.RejectedClip("non_finite_example", f"{path}: non-finite {name}")


def _by_split(element, num_partitions):
    return SPLITS.index(element[0])


def summarize(counted, dataset, class_names, class_names_source=None):
    """The summary dict from [((split, kind, reason), count), ...]."""
    summary = {"dataset": dataset, "class_names": list(class_names),
               "class_names_source": class_names_source, "accepted_clips": 0,
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
        source = self._style.class_names_source(self._raw_dir)
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
                   | "Summarize" >> beam.Map(
                       lambda counted: summarize(counted, dataset, names, source)))
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
    pattern = posixpath.join(adapters.escape_glob(out_dir), REJECTED_DIR, "rejected*.jsonl")
    for path in adapters._match(pattern):
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


def _is_empty_or_missing(out_dir):
    from apache_beam.io.filesystems import FileSystems
    if adapters._is_local(out_dir):
        return not os.path.exists(out_dir) or not os.listdir(out_dir)
    return not FileSystems.match([adapters.escape_glob(out_dir.rstrip("/")) + "/**"])[0] \
        .metadata_list


def _replace_dir(staging, out_dir):
    """Moves the finished `staging` dir to `out_dir`, replacing what was there.

    Local: two renames (the old dir aside, the new one in place), then the old one is deleted; a
    failure in between puts the old one back. Object stores (gs://) have no directories: the old
    files are deleted and the new ones renamed one by one, which is not atomic (a crash in between
    leaves a partial OUT; rerun with --overwrite).
    """
    from apache_beam.io.filesystems import FileSystems
    if adapters._is_local(out_dir):
        old = None
        if os.path.exists(out_dir):
            old = f"{staging}.old"
            os.rename(out_dir, old)
        try:
            os.rename(staging, out_dir)
        except OSError:
            if old:
                os.rename(old, out_dir)
            raise
        if old:
            shutil.rmtree(old)
        return
    out_dir, staging = out_dir.rstrip("/"), staging.rstrip("/")
    old_files = adapters.list_files(out_dir)
    if old_files:
        FileSystems.delete(old_files)
    new_files = adapters.list_files(staging)
    FileSystems.rename(new_files, [out_dir + path[len(staging):] for path in new_files])


def _delete_dir(path):
    from apache_beam.io.filesystems import FileSystems
    if adapters._is_local(path):
        shutil.rmtree(path, ignore_errors=True)
    elif adapters.list_files(path):
        FileSystems.delete(adapters.list_files(path))


def run_preprocess(dataset, raw_dir, out_dir, beam_args=None, overwrite=False, **options):
    """Runs the preprocessing pipeline and returns the summary dict (also in out_dir/summary.json).

    The run writes into a sibling of out_dir (`<out_dir>.partial-<id>`) and only a finished run
    replaces out_dir (see `_replace_dir`): a failed run leaves out_dir as it was.

    beam_args: Beam pipeline args (default: DirectRunner in-process; e.g. multi-processing with
      `beam_args_for_workers(2)`, or Dataflow's `--runner=DataflowRunner --project=...`).
    overwrite: replace a non-empty out_dir whole (otherwise FileExistsError): stale shards of an
      earlier run would otherwise be read with the new ones.
    options: PreprocessOptions fields (augment_copies, eval_fraction, seed, num_classes, ...).
    """
    from apache_beam.options.pipeline_options import PipelineOptions
    opts = options.pop("options", None) or PreprocessOptions.from_dict(options)
    if adapters._is_local(out_dir) and os.path.isfile(out_dir):
        raise NotADirectoryError(f"{out_dir} is a file, not a directory")
    if not overwrite and not _is_empty_or_missing(out_dir):
        raise FileExistsError(f"{out_dir} is not empty: pass --overwrite (overwrite=True) to "
                              f"replace it whole, or choose another --out")
    args = list(beam_args) if beam_args is not None else beam_args_for_workers(1)
    staging = f"{out_dir.rstrip('/')}.partial-{uuid.uuid4().hex[:8]}"
    try:
        with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
            build_pipeline(pipeline, dataset, raw_dir, staging, opts)
        read_summary(staging)  # the run finished: its summary is there
        _replace_dir(staging, out_dir)
    finally:
        _delete_dir(staging)  # a failed run's partial output (nothing left after a swap)
    return read_summary(out_dir)
