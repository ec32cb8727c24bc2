"""`amc-tf evaluate`: the metric suite on demand, for an exported SavedModel (e.g. a pushed
version) or a running server (TF Serving API), on any preprocessed data.

Both run the export's evaluation signature (`classify_generated`: the protocol of
amc_tf/evaluation.py inside the graph) over the eval split's serialized clips and reduce its
outputs with amc_tf/metrics/suite.py, as the Evaluator does. With a user's video feature
extractor (a SavedModel) the suite adds the usual video FID: real clips and the videos the
`generate` signature returns for each clip's first frame, class and seed (the protocol's, so the
same videos) go through the extractor, and the Fréchet distance is taken on its features.
"""

import json
import os
import posixpath

import numpy as np

from serving import export

FEATURE_FID = "feature_fid"
# The widest feature vector the feature Fréchet distance takes: at 8192 each (F, F) float64
# covariance is 0.5 GiB (our choice; I3D's pooled features are 400 or 1024 wide).
MAX_FEATURES = 8192


def load_saved_model(path, what="SavedModel"):
    """tf.saved_model.load, with a failure named by its file: a missing, empty or unparsable
    saved_model.pb (TF's own message for a zero-byte file talks about `tags=`), or variables
    that cannot be read (a truncated copy)."""
    import tensorflow as tf
    graph = os.path.join(path, "saved_model.pb")
    if not tf.io.gfile.exists(graph):
        raise FileNotFoundError(f"{what} {path} holds no saved_model.pb (a directory that "
                                f"`amc-tf pipeline run` or the Pusher wrote: <base>/<version>)")
    if tf.io.gfile.stat(graph).length == 0:
        raise ValueError(f"{what} {graph} is empty (0 bytes): a copy that did not finish")
    try:
        return tf.saved_model.load(path)
    except Exception as e:  # noqa: BLE001  any reader error: named with the directory
        lines = [line for line in str(e).splitlines() if line.strip()]
        raise ValueError(f"{what} {path} cannot be loaded: {type(e).__name__}: "
                         f"{lines[0] if lines else ''} (its saved_model.pb or variables/ are "
                         f"corrupt or truncated)") from e


def saved_model_runner(saved_model_dir):
    """(run(signature, inputs) -> outputs, metadata, the loaded object to keep alive)."""
    import tensorflow as tf
    loaded = load_saved_model(saved_model_dir)
    metadata = export.read_metadata(saved_model_dir)

    def run(signature, inputs):
        fn = loaded.signatures[signature]
        return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in inputs.items()})
                .items()}
    return run, metadata, loaded


def _server_runner(address, model_name):
    from serving import client
    metadata = client.get_metadata(address, model_name)

    def run(signature, inputs):
        return client.predict(address, inputs, model_name=model_name, signature=signature)
    return run, metadata, None


class FeatureExtractor:
    """A user's video feature extractor: a SavedModel whose `serving_default` signature takes one
    float32 video tensor (B, T, 64, 64, 3) in [0, 1] and returns (B, F) features (the output
    `feature_key`, or its only output). Resizing / frame sampling for its own network (e.g. I3D's
    224x224) belongs inside that SavedModel."""

    def __init__(self, path, feature_key=None):
        loaded = load_saved_model(path, "feature extractor")
        if "serving_default" not in loaded.signatures:
            raise ValueError(f"feature extractor {path} has no serving_default signature")
        self._loaded = loaded
        self._fn = loaded.signatures["serving_default"]
        inputs = self._fn.structured_input_signature[1]
        if len(inputs) != 1:
            raise ValueError(f"feature extractor {path} must take one input; takes "
                             f"{sorted(inputs)}")
        self._input = next(iter(inputs))
        outputs = sorted(self._fn.structured_outputs)
        if feature_key is None and len(outputs) != 1:
            raise ValueError(f"feature extractor {path} returns {outputs}: name the feature "
                             f"output with --feature-key")
        if feature_key is not None and feature_key not in outputs:
            raise ValueError(f"feature extractor {path} has no output {feature_key!r}; it "
                             f"returns {outputs}")
        self._key = feature_key or outputs[0]
        self._check_size(self._fn.structured_outputs[self._key].shape[-1], path)
        self.path = path

    def _check_size(self, width, path):
        # The Fréchet distance keeps two (F, F) float64 covariances and a matrix square root.
        if width is not None and width > MAX_FEATURES:
            raise ValueError(
                f"feature extractor {path} returns {width} features: each of the Fréchet "
                f"distance's ({width}, {width}) float64 covariances would take "
                f"{8 * width ** 2 / 2 ** 30:.1f} GiB; at most {MAX_FEATURES} features (pool "
                f"or project them inside the SavedModel)")

    def check_fits(self, num_frames, frame_size=64):
        """Refuses, before any video is generated, an input that declares another dtype, frames
        or sizes than the model's videos: float32 (B, num_frames, 64, 64, 3)."""
        spec = self._fn.structured_input_signature[1][self._input]
        if spec.dtype.name != "float32":
            raise ValueError(f"feature extractor {self.path} takes {spec.dtype.name} input; "
                             f"videos are fed as float32 in [0, 1]")
        declared = spec.shape
        if declared.rank is not None and declared.rank != 5:
            raise ValueError(f"feature extractor {self.path} takes a rank-{declared.rank} "
                             f"input; videos are (batch, frames, {frame_size}, {frame_size}, 3)")
        if declared.rank == 5:
            _, frames, height, width, channels = declared.as_list()
            if frames is not None and frames != num_frames:
                raise ValueError(f"feature extractor {self.path} takes {frames} frames; the "
                                 f"model's videos have {num_frames}")
            if (height, width, channels) != (None, None, None) and \
                    (height, width, channels) != (frame_size, frame_size, 3):
                raise ValueError(f"feature extractor {self.path} takes frames of "
                                 f"{height}x{width}x{channels}; the videos' are "
                                 f"{frame_size}x{frame_size}x3")
        return self

    def __call__(self, video_uint8):
        import tensorflow as tf
        video = tf.constant(np.asarray(video_uint8, np.float32) / 255.0)
        features = self._fn(**{self._input: video})[self._key].numpy()
        if features.ndim != 2 or features.shape[0] != video.shape[0]:
            raise ValueError(f"the feature extractor returned {features.shape}; expected "
                             f"(batch, features)")
        self._check_size(features.shape[1], self.path)
        return features


def evaluate(data_dir, saved_model_dir=None, server=None, model_name="amc_gan", batch_size=16,
             feature_extractor=None, feature_key=None, split="eval"):
    """The suite over `data_dir`'s `split` (a preprocessed dir: `amc-tf preprocess` or
    ExampleGen's examples artifact). Exactly one of `saved_model_dir` / `server` (host:port).

    Returns {"table": {"overall": {...}, class: {...}}, "judges": {...}, "clips": N,
    "model": ..., "not_applicable": [...]}.
    """
    from amc_tf.data import preprocess
    from amc_tf.metrics import frechet, suite
    from amc_tf.training.evaluate import collect_outputs

    if (saved_model_dir is None) == (server is None):
        raise ValueError("evaluate a SavedModel directory or a server address (exactly one)")
    if saved_model_dir is not None:
        run, metadata, _keep = saved_model_runner(saved_model_dir)
    else:
        run, metadata, _keep = _server_runner(server, model_name)
    if export.CLASSIFY_GENERATED not in metadata.get("signatures", []):
        raise ValueError(f"the model has no {export.CLASSIFY_GENERATED} signature: export it "
                         f"with this version of amc_tf")
    batch_size = max(1, min(int(batch_size), int(metadata.get("max_batch_size") or batch_size)))
    # Checked before any video is generated.
    extractor = None if feature_extractor is None else FeatureExtractor(
        feature_extractor, feature_key).check_fits(int(metadata["num_frames"]))
    k, class_names = int(metadata["num_keypoints"]), list(metadata["class_names"])
    _check_data_fits(data_dir, k, class_names)
    pattern = posixpath.join(preprocess.split_dir(data_dir, split), "*")
    outputs, labels = collect_outputs(
        lambda serialized: run(export.CLASSIFY_GENERATED, {"examples": serialized.numpy()}),
        pattern, k, batch_size)
    if labels.max() >= len(class_names):
        raise ValueError(f"the data has class {labels.max()} but the model knows "
                         f"{len(class_names)} classes")
    metrics = suite.applicable_metrics(outputs)
    table = suite.per_class_table(outputs, labels, class_names, metrics)
    if feature_extractor is not None:
        real, generated, fid_labels = [], [], []
        for real_uint8, video, labels_ in paired_videos(run, metadata, pattern, batch_size):
            real.append(extractor(real_uint8))
            generated.append(extractor(video))
            fid_labels.append(labels_)
        real, generated = np.concatenate(real), np.concatenate(generated)
        fid_labels = np.concatenate(fid_labels)

        def fid(rows):
            return frechet.moments_distance(frechet.FeatureMoments().add(real[rows]),
                                            frechet.FeatureMoments().add(generated[rows]))
        table["overall"][FEATURE_FID] = fid(np.ones(len(fid_labels), bool))
        for c, name in enumerate(class_names):
            if name in table:
                table[name][FEATURE_FID] = fid(fid_labels == c)
    not_applicable = [m for m in suite.METRICS if m not in metrics]
    return {"model": metadata.get("model"), "preset": metadata.get("preset"),
            "clips": int(len(labels)), "table": table,
            "judges": dict(metadata.get("judge_metrics") or {}),
            "not_applicable": not_applicable}


def paired_videos(run, metadata, pattern, batch_size):
    """Yields (real, generated, classes) per batch of `pattern`'s clips: the real clips at the
    model's frames (uint8 (B, T, 64, 64, 3)) and what the `generate` signature returns for each
    clip's first frame (if the model takes one), class and the protocol's seed."""
    from amc_tf import evaluation
    from amc_tf.data import features
    from amc_tf.training.evaluate import serialized_batches
    stride = features.NUM_FRAMES // int(metadata["num_frames"])
    inputs_of = metadata["signature_inputs"][export.GENERATE]
    for serialized in serialized_batches(pattern, batch_size):
        clips = features.parse_examples(serialized, int(metadata["num_keypoints"]))
        request = {"motion_class": clips[features.MOTION_CLASS].numpy().astype(np.int32),
                   "seed": evaluation.clip_seeds(clips[features.CLIP_ID]).numpy()}
        if "appearance" in inputs_of:
            request["appearance"] = clips[features.VIDEO][:, 0].numpy()
        video = run(export.GENERATE, request)["video"]
        yield clips[features.VIDEO][:, ::stride].numpy(), video, request["motion_class"]


def _check_data_fits(data_dir, num_keypoints, class_names):
    """The data's own summary (dataset style, classes) against the model's, before any clip is
    parsed: another style's clips would fail deep inside the graph otherwise."""
    from amc_tf.data import datasets
    from amc_tf.training.files import read_examples_summary
    summary = read_examples_summary(data_dir)
    style = datasets.get(summary["dataset"])
    if style.num_keypoints != num_keypoints:
        raise ValueError(f"{data_dir} holds {summary['dataset']} clips ({style.num_keypoints} "
                         f"keypoints) but the model takes {num_keypoints} keypoints")
    data_classes = list(summary["class_names"])
    shared = min(len(data_classes), len(class_names))
    if data_classes[:shared] != class_names[:shared]:
        raise ValueError(f"{data_dir}'s classes {data_classes} are not the model's "
                         f"{class_names}: class ids would mean other motions")


def format_report(report):
    """The table `amc-tf evaluate`, the pipeline summary and the demo print."""
    from amc_tf.metrics import suite
    metrics = list(suite.METRICS) + ([FEATURE_FID] if FEATURE_FID in report["table"]["overall"]
                                     else [])
    head = f"{report.get('model')} ({report.get('preset')}), {report['clips']} eval clips"
    return head + "\n" + suite.format_table(report["table"], metrics, report.get("judges"))


def write_report(report, path):
    import tensorflow as tf
    parent = posixpath.dirname(path)
    if parent:
        tf.io.gfile.makedirs(parent)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(report, indent=2, default=float, allow_nan=True))
