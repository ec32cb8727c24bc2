"""SavedModel export of a model family for TF Serving and the TFMA Evaluator.

`export_serving_model` writes one SavedModel (a `tf.Module`, not Keras `model.export`, so the
evaluation signature can take serialized tf.Examples) whose signatures follow the family contract
(amc_tf.models.family): inputs a family does not take are not in its signatures.

  generate / serving_default
      [appearance uint8 (B, 64, 64, 3)], motion_class int32 (B,), seed int64 (B,)
      -> video uint8 (B, T, 64, 64, 3) (frame 0 is the appearance) [, velocity float32
      (B, T-1, 2k)]. 64 x 64 is the clips' frame size for every preset; presets with smaller
      frames run the generator at their size (amc_tf.inputs does both resizes).
      Velocities (families that take them) are drawn from the per-class bank of training
      velocities (§3.1) and z from a normal, both keyed on the seed: same seed, same video.
  generate_with_velocity (families with velocities)
      the same plus velocity float32 (B, T-1, 2k) given by the caller.
  classify_generated
      examples string (B,) serialized clips -> probabilities float32 (B, C), predicted_class
      int64 (B,). Generates from each clip's first frame, class and own velocities (the model
      inputs of amc_tf.inputs, as in training) with a fixed seed and classifies the video with
      the frozen classifier (§4.1, amc_tf.inference.generate_then_classify).
  metadata
      no inputs -> class_names string (C,), num_frames, num_keypoints int32, preset string,
      metadata_json string: the metadata through Predict, for stock TF Serving.

Metadata (model family, signature inputs, class names, T, k, preset, config JSON, batch limit)
lives in assets/amc_metadata.json, where the server reads it without loading the graph, and
assets.extra/tf_serving_warmup_requests holds one `generate` request that a server runs before it
serves the version.
"""

import json
import posixpath
import tempfile

import numpy as np

GENERATE = "generate"
GENERATE_WITH_VELOCITY = "generate_with_velocity"
CLASSIFY_GENERATED = "classify_generated"
SERVING_DEFAULT = "serving_default"
METADATA = "metadata"
METADATA_FILE = "amc_metadata.json"
WARMUP_FILE = posixpath.join("assets.extra", "tf_serving_warmup_requests")
METADATA_FORMAT = 2
DEFAULT_MAX_BATCH_SIZE = 16
# Seed of the evaluation signature: every clip is generated with the same z and bank key.
EVAL_SEED = 0


def _input_spec(name, config):
    """The TensorSpec of a `generate` input, by its contract name."""
    import tensorflow as tf

    from amc_tf.data import features
    S = features.FRAME_SIZE
    return {
        "appearance": tf.TensorSpec([None, S, S, 3], tf.uint8, name="appearance"),
        "motion_class": tf.TensorSpec([None], tf.int32, name="motion_class"),
        "seed": tf.TensorSpec([None], tf.int64, name="seed"),
        "velocity": tf.TensorSpec([None, config.num_frames - 1, 2 * config.num_keypoints],
                                  tf.float32, name="velocity"),
    }[name]


def _build_module(family, generator, classifier, velocity_bank, config, class_names,
                  max_batch_size):
    import tensorflow as tf

    from amc_tf import inference, inputs
    from amc_tf.data import features

    C, k = int(config.num_classes), int(config.num_keypoints)
    if len(class_names) != C:
        raise ValueError(f"{len(class_names)} class names for a config with {C} classes")
    if family.uses_velocity:
        if velocity_bank is None:
            raise ValueError(f"{family.name} draws velocities: give the velocity bank")
        if tuple(velocity_bank.shape[1:]) != (config.num_frames - 1, 2 * k):
            raise ValueError(f"velocity bank rows are {tuple(velocity_bank.shape[1:])}, need "
                             f"({config.num_frames - 1}, {2 * k}) for T={config.num_frames}, "
                             f"k={k}")
    generate_inputs = family.signature_inputs()
    signatures = [GENERATE] + ([GENERATE_WITH_VELOCITY] if family.uses_velocity else []) + \
        [CLASSIFY_GENERATED, METADATA, SERVING_DEFAULT]
    metadata = {
        "format": METADATA_FORMAT,
        "model": family.name,
        "title": family.title,
        "signature_inputs": {GENERATE: list(generate_inputs)},
        "class_names": list(class_names),
        "num_classes": C,
        "num_frames": int(config.num_frames),
        "num_keypoints": k,
        "frame_size": features.FRAME_SIZE,
        "model_frame_size": int(config.frame_size),
        "preset": config.name,
        "max_batch_size": int(max_batch_size),
        "signatures": signatures,
        "config": json.loads(config.to_json()),
    }
    if family.uses_velocity:
        metadata["signature_inputs"][GENERATE_WITH_VELOCITY] = \
            list(generate_inputs[:-1]) + ["velocity", "seed"]
        metadata.update(velocity_bank_size=int(velocity_bank.shape[0]),
                        velocity_bank_per_class=velocity_bank.per_class,
                        classes_without_velocities=velocity_bank.classes_without_velocities)

    class ServingModule(tf.Module):
        """Generator + frozen classifier (+ velocity bank), with the serving signatures."""

        def __init__(self):
            super().__init__(name="amc_serving")
            self.generator = generator
            self.classifier = classifier
            self.velocity_bank = velocity_bank
            self.metadata_json = tf.Variable(json.dumps(metadata), trainable=False,
                                             name="amc_metadata")

        def _check(self, named, limit_batch=True):
            """The graph's own request checks: they name the input and run before any op sees
            it (the server maps a failure to INVALID_ARGUMENT with this message)."""
            motion_class = named["motion_class"]
            batch = tf.shape(motion_class)[0]
            checks = [
                tf.debugging.assert_greater_equal(
                    motion_class, 0, message=f"motion_class must be in [0, {C})"),
                tf.debugging.assert_less(
                    motion_class, C, message=f"motion_class must be in [0, {C})"),
            ]
            for name, value in named.items():
                if name != "motion_class":
                    checks.append(tf.debugging.assert_equal(
                        tf.shape(value)[0], batch,
                        message=f"{name} must have one entry per motion_class"))
            if limit_batch:
                checks.append(tf.debugging.assert_less_equal(
                    batch, max_batch_size,
                    message=f"batch size is above the limit of {max_batch_size}"))
            if "velocity" in named:
                checks.append(tf.debugging.assert_all_finite(
                    named["velocity"], message="velocity holds NaN or Inf"))
            with tf.control_dependencies(checks):
                return {name: tf.identity(value) for name, value in named.items()}

        def _generate(self, **named):
            named = self._check(named)
            video, conditions = inference.generate_video(
                family, self.generator, config, named.get("appearance"), named["motion_class"],
                named["seed"], velocity=named.get("velocity"), velocity_bank=self.velocity_bank)
            out = {"video": video}
            if family.uses_velocity:
                out["velocity"] = conditions["velocity"]
            return out

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def classify_generated(self, examples):
            clips = features.parse_examples(examples, k)
            batch = inputs.clip_to_model_inputs(clips, config)
            clip = inputs.clip_conditions(batch, family)
            # TFMA picks its own batch size: no serving batch limit here.
            clip = self._check(clip, limit_batch=False)
            seed = tf.fill(tf.shape(clip["motion_class"]), tf.constant(EVAL_SEED, tf.int64))
            conditions = inference.request_conditions(
                family, config, clip["motion_class"], seed, appearance=clip.get("appearance"),
                velocity=clip.get("velocity"))
            logits = inference.generate_then_classify(family, self.generator, self.classifier,
                                                      conditions, config)
            return {"probabilities": tf.nn.softmax(logits, axis=-1),
                    "predicted_class": tf.argmax(logits, axis=-1, output_type=tf.int64)}

        @tf.function(input_signature=[])
        def metadata(self):
            """The amc metadata through Predict, for servers whose GetModelMetadata lacks it."""
            return {"class_names": tf.constant(list(class_names), tf.string),
                    "num_frames": tf.constant(int(config.num_frames), tf.int32),
                    "num_keypoints": tf.constant(k, tf.int32),
                    "preset": tf.constant(config.name, tf.string),
                    "metadata_json": tf.identity(self.metadata_json)}

    module = ServingModule()

    def by_name(names):
        # Positional arguments in the contract's order, passed on by name.
        return lambda *args: module._generate(**dict(zip(names, args)))

    functions = {}
    for signature, names in metadata["signature_inputs"].items():
        specs = [_input_spec(n, config) for n in names]
        functions[signature] = tf.function(by_name(tuple(names)),
                                           input_signature=specs).get_concrete_function()
    functions[CLASSIFY_GENERATED] = module.classify_generated.get_concrete_function()
    functions[METADATA] = module.metadata.get_concrete_function()
    functions[SERVING_DEFAULT] = functions[GENERATE]
    return module, functions, metadata


def export_serving_model(family, generator, classifier, config, class_names, export_dir,
                         velocity_bank=None, max_batch_size=DEFAULT_MAX_BATCH_SIZE):
    """Writes the SavedModel of a trained family for TF Serving and TFMA to `export_dir` (any
    tf.io.gfile path: local, gs://, ram://).

    Args:
      family: the `amc_tf.models.family.ModelFamily`.
      generator: its generator network (built or not; it is called while tracing).
      classifier: frozen `amc_tf.models.classifier.MotionClassifier`, video (B, T, H, W, 3) in
        [-1, 1] -> logits (B, C).
      config: the family config the networks were built with.
      class_names: C motion class names, in class id order.
      export_dir: the SavedModel directory (TF Serving layout puts it at <base>/<version>/).
      velocity_bank: `amc_tf.inference.VelocityBank` of the training clips (families with
        velocities; `amc_tf.training.train.build_velocity_bank`).
      max_batch_size: largest batch a request may carry; the signatures enforce it.

    Returns:
      The metadata dict written to assets/amc_metadata.json.
    """
    import tensorflow as tf

    module, signatures, metadata = _build_module(family, generator, classifier, velocity_bank,
                                                 config, list(class_names), max_batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        path = posixpath.join(tmp, METADATA_FILE)
        with open(path, "w") as f:       # a local file: the SavedModel copies it into assets/
            json.dump(metadata, f, indent=2)
        module.metadata_asset = tf.saved_model.Asset(path)
        tf.saved_model.save(module, export_dir, signatures=signatures)
    _write_warmup_requests(export_dir, metadata)
    return metadata


def _write_warmup_requests(export_dir, metadata):
    """assets.extra/tf_serving_warmup_requests: TF Serving runs these before serving a version."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    size = metadata["frame_size"]
    zeros = {"appearance": np.zeros([1, size, size, 3], np.uint8),
             "motion_class": np.zeros([1], np.int32), "seed": np.zeros([1], np.int64)}
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = GENERATE
    for alias in metadata["signature_inputs"][GENERATE]:
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(zeros[alias]))
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))
    path = posixpath.join(export_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(posixpath.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(log.SerializeToString())


def read_metadata(saved_model_dir):
    """The amc metadata of an exported SavedModel, read from its assets without loading it."""
    import tensorflow as tf
    with tf.io.gfile.GFile(posixpath.join(saved_model_dir, "assets", METADATA_FILE)) as f:
        return json.loads(f.read())
