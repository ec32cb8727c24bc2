"""SavedModel export of AMC-GAN for TF Serving and the TFMA Evaluator.

`export_serving_model` writes one SavedModel (a `tf.Module`, not Keras `model.export`, so the
evaluation signature can take serialized tf.Examples) with these signatures:

  generate / serving_default
      appearance uint8 (B, 64, 64, 3), motion_class int32 (B,), seed int64 (B,)
      -> video uint8 (B, T, 64, 64, 3) (frame 0 is the appearance), velocity float32 (B, T-1, 2k)
      64 x 64 is the clips' frame size (features.FRAME_SIZE) for every preset; presets with
      smaller frames run the generator at their size and resize in the graph.
      The velocity is drawn from the per-class bank of training velocities (§3.1) and the noise z
      from a normal, both by stateless random ops keyed on the seed: same seed, same video.
  generate_with_velocity
      the same plus velocity float32 (B, T-1, 2k) given by the caller.
  classify_generated
      examples string (B,) serialized clips -> probabilities float32 (B, C), predicted_class
      int64 (B,). Generates from each clip's first frame, class and velocities with a fixed seed
      and classifies [y_a, generated frames] with the frozen classifier (the paper's §4 metric).
  metadata
      no inputs -> class_names string (C,), num_frames, num_keypoints int32, preset string,
      metadata_json string: the metadata through Predict, for stock TF Serving.

Metadata (class names, T, k, preset, config JSON, batch limit) lives in
assets/amc_metadata.json, where the server reads it without loading the graph, and
assets.extra/tf_serving_warmup_requests holds one `generate` request that TF Serving runs before it
serves the version.
"""

import json
import os
import tempfile

import numpy as np

GENERATE = "generate"
GENERATE_WITH_VELOCITY = "generate_with_velocity"
CLASSIFY_GENERATED = "classify_generated"
SERVING_DEFAULT = "serving_default"
METADATA = "metadata"
METADATA_FILE = "amc_metadata.json"
METADATA_FORMAT = 1
DEFAULT_MAX_BATCH_SIZE = 16
# Seed of the evaluation signature: every clip is generated with the same z and bank key.
EVAL_SEED = 0
# Second half of the stateless seed pair, one stream per random quantity.
_VELOCITY_STREAM = 1
_NOISE_STREAM = 2


def _to_float_image(x):
    """uint8 [0, 255] -> float32 [-1, 1], the generator's input range."""
    import tensorflow as tf
    return tf.cast(x, tf.float32) / 127.5 - 1.0


def _to_uint8_image(x):
    """float32 [-1, 1] -> uint8 [0, 255], rounded and clipped."""
    import tensorflow as tf
    return tf.cast(tf.round(tf.clip_by_value((x + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


def _class_index(bank_class, num_classes):
    """Bank rows sorted by class, plus per-class (offset, count) into the sorted rows.

    A class with no training velocities samples from the whole bank rather than failing.
    """
    order = np.argsort(bank_class, kind="stable")
    counts = np.bincount(bank_class, minlength=num_classes)[:num_classes]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    empty = [int(c) for c in np.flatnonzero(counts == 0)]
    offsets[counts == 0] = 0
    counts[counts == 0] = len(bank_class)
    return order, offsets.astype(np.int64), counts.astype(np.int64), empty


def _build_module(generator, classifier, velocity_bank, config, class_names, max_batch_size):
    import tensorflow as tf

    from amc_tf.data import features

    T, H = int(config.num_frames), int(config.frame_size)
    # Requests and videos are at the clips' 64 x 64 whatever the preset; a preset with smaller
    # frames (cpu, test) gets the appearance resized down and its frames resized up in-graph.
    S = features.FRAME_SIZE
    k, p, C = int(config.num_keypoints), int(config.noise_dim), int(config.num_classes)
    steps, vdim = T - 1, 2 * k

    bank_velocity = np.asarray(velocity_bank["velocity"], np.float32)
    bank_class = np.asarray(velocity_bank["motion_class"]).astype(np.int64).reshape(-1)
    if bank_velocity.ndim != 3 or bank_velocity.shape[0] != bank_class.shape[0]:
        raise ValueError(f"velocity bank must be (N, steps, 2k) with N classes; got velocity "
                         f"{bank_velocity.shape}, motion_class {bank_class.shape}")
    if bank_velocity.shape[0] == 0:
        raise ValueError("velocity bank is empty: no training velocities to sample from (§3.1)")
    if bank_velocity.shape[1] < steps or bank_velocity.shape[2] != vdim:
        raise ValueError(f"velocity bank rows are {bank_velocity.shape[1:]}, need at least "
                         f"({steps}, {vdim}) for T={T}, k={k}")
    if bank_class.min() < 0 or bank_class.max() >= C:
        raise ValueError(f"velocity bank classes must be in [0, {C}); got "
                         f"[{bank_class.min()}, {bank_class.max()}]")
    if not np.all(np.isfinite(bank_velocity)):
        raise ValueError("velocity bank holds non-finite values")
    if len(class_names) != C:
        raise ValueError(f"{len(class_names)} class names for a config with {C} classes")
    # Clips have 32 frames; a preset with fewer frames uses the first T (first T-1 velocities).
    bank_velocity = bank_velocity[:, :steps]
    order, offsets, counts, empty = _class_index(bank_class, C)

    metadata = {
        "format": METADATA_FORMAT,
        "class_names": list(class_names),
        "num_classes": C,
        "num_frames": T,
        "num_keypoints": k,
        "frame_size": S,
        "model_frame_size": H,
        "noise_dim": p,
        "preset": config.name,
        "max_batch_size": int(max_batch_size),
        "velocity_bank_size": int(bank_velocity.shape[0]),
        "velocity_bank_per_class": [int(c) for c in np.bincount(bank_class, minlength=C)[:C]],
        "classes_without_velocities": empty,
        "signatures": [GENERATE, GENERATE_WITH_VELOCITY, CLASSIFY_GENERATED, METADATA,
                       SERVING_DEFAULT],
        "config": json.loads(config.to_json()),
    }

    class AMCServing(tf.Module):
        """Generator + frozen classifier + velocity bank, with the serving signatures."""

        def __init__(self):
            super().__init__(name="amc_serving")
            self.generator = generator
            self.classifier = classifier
            # Variables, not constants: the bank goes to the checkpoint, not the graph proto.
            self.bank_velocity = tf.Variable(bank_velocity[order], trainable=False,
                                             name="velocity_bank")
            self.bank_offsets = tf.Variable(offsets, trainable=False, name="class_offsets")
            self.bank_counts = tf.Variable(counts, trainable=False, name="class_counts")
            self.metadata_json = tf.Variable(json.dumps(metadata), trainable=False,
                                             name="amc_metadata")

        def _check(self, appearance, motion_class, velocity=None, limit_batch=True):
            batch = tf.shape(appearance)[0]
            checks = [
                tf.debugging.assert_equal(
                    tf.shape(motion_class)[0], batch,
                    message="motion_class must have one entry per appearance"),
                tf.debugging.assert_greater_equal(
                    motion_class, 0, message=f"motion_class must be in [0, {C})"),
                tf.debugging.assert_less(
                    motion_class, C, message=f"motion_class must be in [0, {C})"),
            ]
            if limit_batch:
                checks.append(tf.debugging.assert_less_equal(
                    batch, max_batch_size,
                    message=f"batch size is above the limit of {max_batch_size}"))
            if velocity is not None:
                checks.append(tf.debugging.assert_equal(
                    tf.shape(velocity)[0], batch,
                    message="velocity must have one entry per appearance"))
                checks.append(tf.debugging.assert_all_finite(
                    velocity, message="velocity holds NaN or Inf"))
            return checks

        def _checked(self, checks, *tensors):
            """`tensors`, usable only once every check has passed (so no op sees bad input)."""
            with tf.control_dependencies(checks):
                return tuple(tf.identity(t) for t in tensors)

        def _noise(self, seed):
            return tf.map_fn(
                lambda s: tf.random.stateless_normal(
                    [p], seed=tf.stack([s, tf.constant(_NOISE_STREAM, tf.int64)])),
                seed, fn_output_signature=tf.TensorSpec([p], tf.float32))

        def _sample_velocity(self, motion_class, seed):
            """One bank row of each example's class, picked by its seed (§3.1)."""
            cls = tf.cast(motion_class, tf.int64)
            offset = tf.gather(self.bank_offsets, cls)
            count = tf.gather(self.bank_counts, cls)
            u = tf.map_fn(
                lambda s: tf.random.stateless_uniform(
                    [], seed=tf.stack([s, tf.constant(_VELOCITY_STREAM, tf.int64)]),
                    dtype=tf.float32),
                seed, fn_output_signature=tf.TensorSpec([], tf.float32))
            row = offset + tf.minimum(
                tf.cast(tf.floor(u * tf.cast(count, tf.float32)), tf.int64), count - 1)
            return tf.gather(self.bank_velocity, row)

        def _to_model_size(self, y_a):
            """Appearance at the API's S x S -> the generator's H x H."""
            if H == S:
                return y_a
            return tf.image.resize(y_a, [H, H], method="bilinear", antialias=True)

        def _to_api_size(self, frames):
            """Generated (B, T-1, H, H, 3) -> (B, T-1, S, S, 3)."""
            if H == S:
                return frames
            shape = tf.shape(frames)
            up = tf.image.resize(tf.reshape(frames, [-1, H, H, 3]), [S, S], method="bilinear")
            return tf.reshape(up, [shape[0], shape[1], S, S, 3])

        def _generate_frames(self, y_a, motion_class, velocity, seed):
            """The generator at its own frame size: (B, T-1, H, H, 3) in [-1, 1]."""
            frames = self.generator({"appearance": y_a, "motion_class": motion_class,
                                     "velocity": velocity, "noise": self._noise(seed)},
                                    training=False)
            return tf.cast(frames, tf.float32)

        def _generate_video(self, appearance, motion_class, velocity, seed):
            """uint8 (B, T, S, S, 3): the given appearance, then the generated frames."""
            y_a = _to_float_image(appearance)
            frames = self._generate_frames(self._to_model_size(y_a), motion_class, velocity, seed)
            return _to_uint8_image(tf.concat([y_a[:, None], self._to_api_size(frames)], axis=1))

        @tf.function(input_signature=[
            tf.TensorSpec([None, S, S, 3], tf.uint8, name="appearance"),
            tf.TensorSpec([None], tf.int32, name="motion_class"),
            tf.TensorSpec([None], tf.int64, name="seed")])
        def generate(self, appearance, motion_class, seed):
            appearance, motion_class, seed = self._checked(
                self._check(appearance, motion_class), appearance, motion_class, seed)
            velocity = self._sample_velocity(motion_class, seed)
            return {"video": self._generate_video(appearance, motion_class, velocity, seed),
                    "velocity": velocity}

        @tf.function(input_signature=[
            tf.TensorSpec([None, S, S, 3], tf.uint8, name="appearance"),
            tf.TensorSpec([None], tf.int32, name="motion_class"),
            tf.TensorSpec([None, steps, vdim], tf.float32, name="velocity"),
            tf.TensorSpec([None], tf.int64, name="seed")])
        def generate_with_velocity(self, appearance, motion_class, velocity, seed):
            appearance, motion_class, velocity, seed = self._checked(
                self._check(appearance, motion_class, velocity),
                appearance, motion_class, velocity, seed)
            return {"video": self._generate_video(appearance, motion_class, velocity, seed),
                    "velocity": velocity}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def classify_generated(self, examples):
            clips = features.parse_examples(examples, k)
            motion_class = clips[features.MOTION_CLASS]
            # TFMA picks its own batch size: no serving batch limit here.
            appearance, motion_class, velocity = self._checked(
                self._check(clips[features.VIDEO][:, 0], motion_class, limit_batch=False),
                clips[features.VIDEO][:, 0], motion_class, clips[features.VELOCITY][:, :steps])
            seed = tf.fill(tf.shape(motion_class), tf.constant(EVAL_SEED, tf.int64))
            # The classifier sees [y_a, generated frames] at the networks' own frame size.
            y_a = self._to_model_size(_to_float_image(appearance))
            frames = self._generate_frames(y_a, motion_class, velocity, seed)
            logits = self.classifier(tf.concat([y_a[:, None], frames], axis=1), training=False)
            return {"probabilities": tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1),
                    "predicted_class": tf.argmax(logits, axis=-1, output_type=tf.int64)}

        @tf.function(input_signature=[])
        def metadata(self):
            """The amc metadata through Predict, for servers whose GetModelMetadata lacks it."""
            return {"class_names": tf.constant(list(class_names), tf.string),
                    "num_frames": tf.constant(T, tf.int32),
                    "num_keypoints": tf.constant(k, tf.int32),
                    "preset": tf.constant(config.name, tf.string),
                    "metadata_json": tf.identity(self.metadata_json)}

    return AMCServing(), metadata


def export_serving_model(generator, classifier, velocity_bank, config, class_names, export_dir,
                         max_batch_size=DEFAULT_MAX_BATCH_SIZE):
    """Writes the AMC-GAN SavedModel for TF Serving and TFMA to `export_dir`.

    Args:
      generator: `amc_tf.models.Generator` (built or not; it is called while tracing).
      classifier: frozen `amc_tf.models.MotionClassifier`, video (B, T, H, W, 3) in [-1, 1] ->
        logits (B, C).
      velocity_bank: dict(velocity=(N, T-1, 2k) float32, motion_class=(N,) int) of training
        clips (`amc_tf.training.build_velocity_bank`).
      config: `amc_tf.config.AMCConfig` the networks were built with.
      class_names: C motion class names, in class id order.
      export_dir: the SavedModel directory (TF Serving layout puts it at <base>/<version>/).
      max_batch_size: largest batch a request may carry; the signatures and the server enforce it.

    Returns:
      The metadata dict written to assets/amc_metadata.json.
    """
    import tensorflow as tf

    module, metadata = _build_module(generator, classifier, velocity_bank, config,
                                     list(class_names), max_batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, METADATA_FILE)
        with open(path, "w") as f:
            json.dump(metadata, f, indent=2)
        module.metadata_asset = tf.saved_model.Asset(path)
        signatures = {
            GENERATE: module.generate.get_concrete_function(),
            GENERATE_WITH_VELOCITY: module.generate_with_velocity.get_concrete_function(),
            CLASSIFY_GENERATED: module.classify_generated.get_concrete_function(),
            METADATA: module.metadata.get_concrete_function(),
        }
        signatures[SERVING_DEFAULT] = signatures[GENERATE]
        tf.saved_model.save(module, export_dir, signatures=signatures)
    _write_warmup_requests(export_dir, metadata)
    return metadata


def _write_warmup_requests(export_dir, metadata):
    """assets.extra/tf_serving_warmup_requests: TF Serving runs these before serving a version."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    size = metadata["frame_size"]
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = GENERATE
    for alias, value in (("appearance", np.zeros([1, size, size, 3], np.uint8)),
                         ("motion_class", np.zeros([1], np.int32)),
                         ("seed", np.zeros([1], np.int64))):
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))
    extra = os.path.join(export_dir, "assets.extra")
    tf.io.gfile.makedirs(extra)
    with tf.io.TFRecordWriter(os.path.join(extra, "tf_serving_warmup_requests")) as writer:
        writer.write(log.SerializeToString())


def read_metadata(saved_model_dir):
    """The amc metadata of an exported SavedModel, read from its assets without loading it."""
    with open(os.path.join(saved_model_dir, "assets", METADATA_FILE)) as f:
        return json.load(f)
