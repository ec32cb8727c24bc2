"""A model server speaking TF Serving's gRPC API, for where no TF Serving binary can be installed.

Implements `PredictionService` (Predict, GetModelMetadata) and `ModelService` (GetModelStatus)
from `tensorflow_serving.apis` over a base path in TF Serving layout (`<base>/<version>/`, a
SavedModel per version; `<base>/<model_name>/<version>/` is accepted too). Like TF Serving's
default version policy it serves the latest version, polls for newer ones, loads and warms a new
version before swapping to it, and keeps the old one until its in-flight requests finish.

Bad requests get TF Serving's status codes with a message naming the input: INVALID_ARGUMENT for
missing / extra inputs, dtype, shape, batch limit, class range and non-finite velocities;
NOT_FOUND for an unknown model or version; FAILED_PRECONDITION for an unknown signature (TF
Serving's own code for it); RESOURCE_EXHAUSTED (from gRPC) for a message over the size limit.

Python API: `server = start(model_base_path, port=0)` -> `server.port`; `server.stop(grace)`.
"""

import concurrent.futures
import contextlib
import json
import logging
import os
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import wrappers_pb2
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from serving import export

log = logging.getLogger("amc_tf.serving")

DEFAULT_MODEL_NAME = "amc_gan"
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20
DEFAULT_POLL_INTERVAL_S = 2.0
# A version whose load failed (e.g. still being copied) is retried this many polls.
_LOAD_RETRIES = 5


class ServingError(Exception):
    """A request error with the gRPC status code TF Serving would answer with."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message):
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _servable_not_found(name, version):
    spec = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
    return ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {spec}")


def _status_code_of(error_code):
    """gRPC StatusCode for a TF error code (both follow google.rpc.Code numbering)."""
    for code in grpc.StatusCode:
        if code.value[0] == int(error_code):
            return code
    return grpc.StatusCode.UNKNOWN


def _op_error_message(e):
    """The useful line of a TF op error (the assertion text, not the node trace)."""
    text = getattr(e, "message", str(e))
    noise = ("Graph execution error", "Detected at node", "<stack traces", "[[", "Op:")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "assertion failed" in line:
            return line
    for line in lines:
        if not line.startswith(noise):
            return line
    return lines[0] if lines else type(e).__name__


def _shape_str(shape):
    return "[" + ",".join("-1" if d is None else str(d) for d in shape) + "]"


class Signature:
    """One signature of a loaded version: the function and its input / output specs."""

    def __init__(self, name, fn):
        self.name = name
        self.fn = fn
        _, kwargs = fn.structured_input_signature
        # Input alias -> (numpy dtype, shape list with None for any size).
        self.inputs = {k: (spec.dtype.as_numpy_dtype, spec.shape.as_list())
                       for k, spec in sorted(kwargs.items())}
        self.outputs = sorted(fn.structured_outputs)


class _FailedVersion:
    """A version that could not be loaded: END, with the load error."""

    def __init__(self, version, error_code, error):
        self.version = version
        self.state = "END"
        self.error_code = error_code
        self.error = error


class LoadedModel:
    """One version: the loaded SavedModel, its signatures and metadata, and an in-flight count."""

    def __init__(self, version, path):
        self.version = version
        self.path = path
        self.metadata = export.read_metadata(path)
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            saved = saved_model_pb2.SavedModel.FromString(f.read())
        # GetModelMetadata answers with the SignatureDefMap exactly as stored.
        self.signature_defs = saved.meta_graphs[0].signature_def
        self._loaded = tf.saved_model.load(path)
        self.signatures = {name: Signature(name, fn)
                           for name, fn in self._loaded.signatures.items()}
        self.in_flight = 0
        self.state = "LOADING"
        self.error_code = 0
        self.error = ""

    def warm_up(self):
        """One batch-1 call of every generating signature, so the first request is not slow."""
        size = int(self.metadata["frame_size"])
        for name in (export.GENERATE, export.GENERATE_WITH_VELOCITY):
            sig = self.signatures.get(name)
            if sig is None:
                continue
            inputs = {"appearance": np.zeros([1, size, size, 3], np.uint8),
                      "motion_class": np.zeros([1], np.int32), "seed": np.zeros([1], np.int64)}
            if "velocity" in sig.inputs:
                inputs["velocity"] = np.zeros([1] + sig.inputs["velocity"][1][1:], np.float32)
            sig.fn(**inputs)

    def unload(self):
        self._loaded = None
        self.signatures = {}
        self.state = "END"


class ModelManager:
    """Watches a TF Serving base path and keeps the latest version loaded (latest-1 policy)."""

    def __init__(self, model_base_path, model_name=DEFAULT_MODEL_NAME,
                 poll_interval_s=DEFAULT_POLL_INTERVAL_S, max_batch_size=None, warm_up=True):
        self.model_base_path = os.path.abspath(model_base_path)
        self.model_name = model_name
        self.poll_interval_s = poll_interval_s
        self.max_batch_size = max_batch_size
        self.warm_up = warm_up
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._current = None
        # version -> state for GetModelStatus ("AVAILABLE", "UNLOADING", "END").
        self._history = {}
        self._retiring = []
        # version -> (fingerprint that failed to load, tries); version -> last fingerprint.
        self._failures = {}
        self._seen = {}
        self._stop = threading.Event()
        self._thread = None

    def versions_dir(self):
        """`<base>/<version>/` as TF Serving reads it; `<base>/<model_name>/<version>/` too."""
        if _numeric_dirs(self.model_base_path):
            return self.model_base_path
        nested = os.path.join(self.model_base_path, self.model_name)
        return nested if os.path.isdir(nested) else self.model_base_path

    def _candidates(self):
        """(version, path) of every complete version ready to load.

        A Pusher copies file by file into `<base>/<version>/`, so while a version is served a new
        one counts only once its files (names, sizes, mtimes) are unchanged since the last poll.
        """
        root = self.versions_dir()
        found = []
        for version in _numeric_dirs(root):
            path = os.path.join(root, str(version))
            complete = all(os.path.exists(os.path.join(path, p)) for p in
                           ("saved_model.pb", "variables/variables.index",
                            f"assets/{export.METADATA_FILE}"))
            if not complete:
                continue
            fingerprint = _fingerprint(path)
            settled = self._current is None or self._seen.get(version) == fingerprint
            self._seen[version] = fingerprint
            failed_fingerprint, failures = self._failures.get(version, (None, 0))
            if failed_fingerprint != fingerprint:
                failures = 0  # re-pushed: try again
            if settled and failures < _LOAD_RETRIES:
                found.append((version, path))
        return found

    def poll(self):
        """Loads the highest complete version if it is not the one served; returns True on swap."""
        # One load at a time (the poller and an explicit poll() may race).
        with self._poll_lock:
            return self._poll()

    def _poll(self):
        candidates = self._candidates()
        if not candidates:
            return False
        version, path = max(candidates)
        current = self._current
        if current is not None and current.version == version:
            return False
        try:
            model = LoadedModel(version, path)
            if self.warm_up:
                model.warm_up()
        except Exception as e:  # noqa: BLE001 - a half-copied version is retried on later polls
            fingerprint, failures = self._failures.get(version, (None, 0))
            if fingerprint != self._seen.get(version):
                failures = 0
            self._failures[version] = (self._seen.get(version), failures + 1)
            log.warning("could not load %s version %d from %s (try %d of %d): %s",
                        self.model_name, version, path, failures + 1, _LOAD_RETRIES, e)
            if failures + 1 >= _LOAD_RETRIES:
                with self._lock:
                    # Reported by GetModelStatus as END with the load error, as TF Serving does.
                    if not isinstance(self._history.get(version), LoadedModel):
                        code = getattr(e, "error_code", grpc.StatusCode.UNKNOWN.value[0])
                        self._history[version] = _FailedVersion(version, int(code), str(e))
            return False
        with self._lock:
            old, self._current = self._current, model
            model.state = "AVAILABLE"
            self._history[version] = model
            if old is not None:
                old.state = "UNLOADING"
                self._retire(old)
        log.info("serving %s version %d from %s", self.model_name, version, path)
        return True

    def _retire(self, model):
        """Unloads a swapped-out version once its last in-flight request is done (lock held)."""
        if model.in_flight == 0 and model.state == "UNLOADING":
            model.unload()

    @contextlib.contextmanager
    def acquire(self, name, version=None):
        """The served version for a request, held until the request is done."""
        with self._lock:
            model = self._current
            if name != self.model_name or model is None or (
                    version is not None and version != model.version):
                raise _servable_not_found(name, version)
            model.in_flight += 1
        try:
            yield model
        finally:
            with self._lock:
                model.in_flight -= 1
                self._retire(model)

    def status(self, name, version=None):
        """[(version, state, error code, error message)] like GetModelStatus, newest first.

        NOT_FOUND for an unknown model or version.
        """
        with self._lock:
            if name != self.model_name or not self._history:
                raise ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"Could not find any versions of model {name}")
            if version is not None:
                if version not in self._history:
                    raise ServingError(grpc.StatusCode.NOT_FOUND,
                                       f"Could not find version {version} of model {name}")
                entries = [self._history[version]]
            else:
                entries = sorted(self._history.values(), key=lambda m: -m.version)
            return [(m.version, m.state, m.error_code, m.error) for m in entries]

    def start(self):
        self.poll()
        self._thread = threading.Thread(target=self._poll_loop, name="amc-version-poller",
                                        daemon=True)
        self._thread.start()

    def _poll_loop(self):
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - the poller must outlive a bad directory listing
                log.exception("version poll failed")

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _fingerprint(path):
    """Names, sizes and mtimes of every file under `path`: changes while a copy is running."""
    entries = []
    for dirpath, _, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            entries.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns))
    return tuple(sorted(entries))


def _numeric_dirs(root):
    try:
        names = os.listdir(root)
    except OSError:
        return []
    return sorted(int(n) for n in names
                  if n.isdigit() and os.path.isdir(os.path.join(root, n)))


class Predictor:
    """Validates a request against the served signature and runs it: shared by gRPC and REST."""

    def __init__(self, manager):
        self.manager = manager

    def predict(self, name, version, signature_name, inputs, output_filter=()):
        """Runs one request.

        Args:
          inputs: alias -> numpy array or a callable(expected dtype) returning one (so a
            TensorProto is decoded only after its alias and dtype are known to be right).
        Returns:
          (version, signature name, {output alias: numpy array}).
        """
        signature_name = signature_name or export.SERVING_DEFAULT
        with self.manager.acquire(name, version) as model:
            sig = model.signatures.get(signature_name)
            if sig is None:
                raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                                   f"Serving signature key \"{signature_name}\" not found.")
            arrays = self._validate(model, sig, inputs)
            for alias in output_filter:
                if alias not in sig.outputs:
                    raise _invalid(f"output tensor alias not found in signature: {alias}. "
                                   f"Outputs expected to be in the set "
                                   f"{{{','.join(sig.outputs)}}}.")
            try:
                outputs = sig.fn(**{k: tf.constant(v) for k, v in arrays.items()})
            except tf.errors.OpError as e:
                raise ServingError(_status_code_of(e.error_code), _op_error_message(e)) from e
            wanted = output_filter or sig.outputs
            return model.version, signature_name, {k: np.asarray(outputs[k].numpy())
                                                    for k in wanted}

    def _validate(self, model, sig, inputs):
        sent, expected = set(inputs), set(sig.inputs)
        if sent != expected:
            if len(sent) != len(expected):
                raise _invalid(
                    f"input size does not match signature: {len(sent)}!={len(expected)} "
                    f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
                    f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
                    f"Missing but required: {{{','.join(sorted(expected - sent))}}}.")
            extra = sorted(sent - expected)[0]
            raise _invalid(f"input tensor alias not found in signature: {extra}. Inputs expected "
                           f"to be in the set {{{','.join(sorted(expected))}}}.")
        arrays = {}
        for alias, (dtype, shape) in sig.inputs.items():
            value = inputs[alias]
            array = value(dtype, alias) if callable(value) else np.asarray(value)
            if array.dtype != dtype and not (dtype == np.object_ and array.dtype.kind in "SO"):
                raise _invalid(f"input \"{alias}\" has dtype {array.dtype.name} but signature "
                               f"\"{sig.name}\" expects {np.dtype(dtype).name}")
            if len(array.shape) != len(shape) or any(
                    d is not None and d != a for d, a in zip(shape, array.shape)):
                raise _invalid(f"input \"{alias}\" has shape {_shape_str(array.shape)} but "
                               f"signature \"{sig.name}\" expects {_shape_str(shape)}")
            arrays[alias] = array
        if not arrays:
            return arrays
        batches = {alias: a.shape[0] for alias, a in arrays.items() if a.ndim}
        if len(set(batches.values())) > 1:
            raise _invalid("inputs have different batch sizes: " + ", ".join(
                f"{alias} {b}" for alias, b in sorted(batches.items())))
        batch = next(iter(batches.values()), 1)
        if batch == 0:
            raise _invalid("batch size is 0: send at least one example")
        limit = self.manager.max_batch_size or model.metadata.get("max_batch_size")
        if limit and sig.name != export.CLASSIFY_GENERATED and batch > limit:
            raise _invalid(f"batch size {batch} is larger than the maximum input batch size "
                           f"{limit}")
        if "motion_class" in arrays:
            classes = arrays["motion_class"]
            num_classes = int(model.metadata["num_classes"])
            bad = classes[(classes < 0) | (classes >= num_classes)]
            if bad.size:
                raise _invalid(f"input \"motion_class\" holds {int(bad[0])}, outside [0, "
                               f"{num_classes}): classes are "
                               f"{', '.join(model.metadata['class_names'])}")
        for alias, array in arrays.items():
            if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
                raise _invalid(f"input \"{alias}\" holds NaN or Inf values")
        return arrays


def _tensor_decoder(proto, max_elements):
    """A callable(dtype, alias) that checks the proto's dtype and size and returns it as numpy."""

    def decode(dtype, alias):
        expected = tf.as_dtype(dtype).as_datatype_enum
        if proto.dtype != expected:
            try:
                got = tf.dtypes.as_dtype(proto.dtype).name
            except TypeError:
                got = f"DataType {proto.dtype}"
            raise _invalid(f"input \"{alias}\" has dtype {got} but the signature expects "
                           f"{tf.as_dtype(dtype).name}")
        dims = [d.size for d in proto.tensor_shape.dim]
        if any(d < 0 for d in dims):
            raise _invalid(f"input \"{alias}\" has an unknown dimension in shape {dims}")
        # A TensorProto may hold one value for a whole shape: cap what decoding can allocate.
        if int(np.prod(dims, dtype=np.float64)) > max_elements:
            raise _invalid(f"input \"{alias}\" of shape {_shape_str(dims)} has more than "
                           f"{max_elements} elements")
        try:
            return tf.make_ndarray(proto)
        except (ValueError, TypeError) as e:
            raise _invalid(f"input \"{alias}\" is a malformed TensorProto: {e}") from e
    return decode


def _make_tensor_proto(array):
    """TensorProto of a numeric array as raw tensor_content (cheaper than make_tensor_proto)."""
    if array.dtype.kind in "OSU":
        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(dtype=tf.as_dtype(array.dtype).as_datatype_enum,
                                   tensor_content=np.ascontiguousarray(array).tobytes())
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    return proto


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """gRPC PredictionService: Predict and GetModelMetadata (Classify / Regress: UNIMPLEMENTED)."""

    def __init__(self, predictor, max_elements):
        self.predictor = predictor
        # No valid request decodes to more elements than the message has bytes.
        self.max_elements = max_elements

    def Predict(self, request, context):
        spec = request.model_spec
        try:
            version = spec.version.value if spec.HasField("version") else None
            if spec.WhichOneof("version_choice") == "version_label":
                raise ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"no version label \"{spec.version_label}\" is configured "
                                   f"for model {spec.name}; ask for a version number")
            served, signature_name, outputs = self.predictor.predict(
                spec.name, version, spec.signature_name,
                {k: _tensor_decoder(v, self.max_elements) for k, v in request.inputs.items()},
                tuple(request.output_filter))
            response = predict_pb2.PredictResponse()
            response.model_spec.name = spec.name
            response.model_spec.version.value = served
            response.model_spec.signature_name = signature_name
            for alias, array in outputs.items():
                response.outputs[alias].CopyFrom(_make_tensor_proto(array))
            return response
        except ServingError as e:
            context.abort(e.code, e.message)
        except Exception as e:  # noqa: BLE001 - answer INTERNAL, keep the server up
            log.exception("Predict failed")
            context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")

    def GetModelMetadata(self, request, context):
        spec = request.model_spec
        try:
            fields = list(request.metadata_field)
            if not fields:
                raise _invalid("GetModelMetadataRequest must specify at least one "
                               "metadata_field")
            for field in fields:
                if field not in ("signature_def", "amc_metadata"):
                    raise _invalid(f"Metadata field {field} is not supported")
            version = spec.version.value if spec.HasField("version") else None
            with self.predictor.manager.acquire(spec.name, version) as model:
                response = get_model_metadata_pb2.GetModelMetadataResponse()
                response.model_spec.name = spec.name
                response.model_spec.version.value = model.version
                if "signature_def" in fields:
                    signature_map = get_model_metadata_pb2.SignatureDefMap()
                    for key, sig_def in model.signature_defs.items():
                        signature_map.signature_def[key].CopyFrom(sig_def)
                    response.metadata["signature_def"].Pack(signature_map)
                if "amc_metadata" in fields:
                    response.metadata["amc_metadata"].Pack(
                        wrappers_pb2.StringValue(value=json.dumps(model.metadata)))
                return response
        except ServingError as e:
            context.abort(e.code, e.message)


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """gRPC ModelService: GetModelStatus."""

    def __init__(self, manager):
        self.manager = manager

    def GetModelStatus(self, request, context):
        spec = request.model_spec
        try:
            version = spec.version.value if spec.HasField("version") else None
            states = self.manager.status(spec.name, version)
        except ServingError as e:
            context.abort(e.code, e.message)
        response = get_model_status_pb2.GetModelStatusResponse()
        for v, state, error_code, error in states:
            status = response.model_version_status.add()
            status.version = v
            status.state = get_model_status_pb2.ModelVersionStatus.State.Value(state)
            status.status.error_code = error_code
            status.status.error_message = error
        return response

    def HandleReloadConfigRequest(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      "this server watches one model base path; config reload is not supported")


class ModelServer:
    """The gRPC (and optional REST) server over one model base path.

    Args:
      model_base_path: TF Serving base path: `<base>/<version>/` SavedModels.
      model_name: the name requests must carry in model_spec.name.
      host: interface to bind; loopback unless told otherwise.
      port: gRPC port; 0 picks a free one (read `server.port` after `start()`).
      rest_port: REST port (TF Serving's `/v1/models/<name>:predict`); None for no REST.
      max_batch_size: request batch limit; None uses the one stored in the model's metadata.
      max_message_bytes: largest request accepted; bigger ones get RESOURCE_EXHAUSTED.
      poll_interval_s: how often the base path is checked for a new version.
      workers: gRPC handler threads (concurrent requests).
    """

    def __init__(self, model_base_path, model_name=DEFAULT_MODEL_NAME, host="127.0.0.1",
                 port=8500, rest_port=None, max_batch_size=None,
                 max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES,
                 poll_interval_s=DEFAULT_POLL_INTERVAL_S, workers=8, warm_up=True):
        self.manager = ModelManager(model_base_path, model_name, poll_interval_s,
                                    max_batch_size, warm_up)
        self.predictor = Predictor(self.manager)
        self.host = host
        self.requested_port = port
        self.requested_rest_port = rest_port
        self.max_message_bytes = max_message_bytes
        self.workers = workers
        self.port = None
        self.rest_port = None
        self._grpc = None
        self._rest = None
        self._stopped = threading.Event()

    def start(self):
        self.manager.start()
        server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=self.workers,
                                                  thread_name_prefix="amc-grpc"),
            options=[("grpc.max_receive_message_length", self.max_message_bytes),
                     ("grpc.max_send_message_length", -1),
                     ("grpc.so_reuseport", 0)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self.predictor, self.max_message_bytes), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            _ModelService(self.manager), server)
        address = f"{_bracket(self.host)}:{self.requested_port}"
        self.port = server.add_insecure_port(address)
        if not self.port:
            self.manager.stop()
            raise OSError(f"could not bind the gRPC server to {address}")
        server.start()
        self._grpc = server
        if self.requested_rest_port is not None:
            from serving import rest
            self._rest = rest.RestServer(self.predictor, self.host, self.requested_rest_port,
                                         self.max_message_bytes)
            self.rest_port = self._rest.start()
        log.info("gRPC on %s:%d%s", self.host, self.port,
                 f", REST on {self.host}:{self.rest_port}" if self._rest else "")
        return self

    def stop(self, grace=5.0):
        """Stops taking requests, lets in-flight ones finish for up to `grace` seconds."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._rest is not None:
            self._rest.stop()
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
        self.manager.stop()

    def wait(self):
        """Blocks until `stop()` (e.g. from a signal handler)."""
        self._stopped.wait()
        if self._grpc is not None:
            self._grpc.wait_for_termination()

    def __enter__(self):
        return self.start() if self._grpc is None else self

    def __exit__(self, *exc):
        self.stop()


def _bracket(host):
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def start(model_base_path, model_name=DEFAULT_MODEL_NAME, port=0, **kwargs):
    """Starts a `ModelServer` and returns it (`.port` is the bound gRPC port)."""
    return ModelServer(model_base_path, model_name, port=port, **kwargs).start()


def wait_for_version(server, version, timeout_s=60.0):
    """Blocks until `server` serves `version` (for tests and scripts that push a new one)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        current = server.manager._current
        if current is not None and current.version == version:
            return
        time.sleep(0.05)
    raise TimeoutError(f"version {version} was not served within {timeout_s} s")
