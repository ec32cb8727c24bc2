"""Version source and manager: finds versions under a TF Serving base path, loads, warms, retires.

Like TF Serving's default version policy it serves the latest version, polls for newer ones, loads
and warms a new version before swapping to it, and keeps the old one until its in-flight requests
finish. A version directory is a candidate once its `saved_model.pb` exists (TFX's Pusher copies
that file last) and is served once the SavedModel loads and its warm-up requests succeed.
"""

import contextlib
import json
import logging
import os
import threading

import grpc
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from serving import codec, errors, export, predictor

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL_S = 2.0
# TF Serving's limit on the records of a version's warm-up file (export.WARMUP_FILE).
_MAX_WARMUP_RECORDS = 1000
# GetModelMetadata's entry for the export's metadata JSON, named after its file.
METADATA_FIELD = os.path.splitext(export.METADATA_FILE)[0]
# A version whose load failed (e.g. still being copied) is retried this many polls.
_LOAD_RETRIES = 5


class LoadedModel:
    """One version: the loaded SavedModel, its signatures and metadata, and an in-flight count.

    Args:
      max_batch_size: request batch limit; None uses the metadata's `max_batch_size`, if any.
    """

    def __init__(self, version, path, max_batch_size=None):
        self.version = version
        self.path = path
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            saved = saved_model_pb2.SavedModel.FromString(f.read())
        # GetModelMetadata answers with the SignatureDefMap exactly as stored.
        self.signature_defs = saved.meta_graphs[0].signature_def
        self._loaded = tf.saved_model.load(path)
        self.signatures = {name: predictor.Signature(name, fn)
                           for name, fn in self._loaded.signatures.items()}
        self.metadata = _read_metadata(path)
        self.max_batch_size = max_batch_size or (self.metadata or {}).get("max_batch_size")
        self.in_flight = 0
        self.state = "LOADING"
        self.error_code = 0
        self.error = ""

    def warm_up(self):
        """Replays the export's warm-up requests through the prediction path, as TF Serving does.

        A version without the file is not warmed; a failing request fails the load.
        Returns:
          The number of requests replayed.
        """
        path = os.path.join(self.path, export.WARMUP_FILE)
        if not os.path.exists(path):
            return 0
        count = 0
        for count, record in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator(), 1):
            if count > _MAX_WARMUP_RECORDS:
                raise errors.invalid(f"{export.WARMUP_FILE} holds more than "
                                     f"{_MAX_WARMUP_RECORDS} records (TF Serving's limit)")
            where = f"warm-up record {count} of {export.WARMUP_FILE}"
            entry = prediction_log_pb2.PredictionLog.FromString(record)
            kind = entry.WhichOneof("log_type")
            if kind != "predict_log":
                raise errors.ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                          f"{where} is a {kind}; only predict_log is replayed")
            request = entry.predict_log.request
            # The export's own records, yet bounded: a value sent takes a byte or more of the
            # record and decodes to at most 8 (a number) or 1 + STRING_ELEMENT_BYTES per byte.
            inputs = {alias: codec.proto_decoder(
                          proto, len(record) * (1 + codec.STRING_ELEMENT_BYTES))
                      for alias, proto in request.inputs.items()}
            try:
                predictor.run(self, request.model_spec.signature_name, inputs,
                              tuple(request.output_filter))
            except errors.ServingError as e:
                raise errors.ServingError(e.code, f"{where} failed: {e.message}") from e
        return count

    def unload(self):
        self._loaded = None
        self.signatures = {}
        self.state = "END"


def _read_metadata(path):
    """The export's metadata JSON, or None for a SavedModel without one."""
    try:
        return export.read_metadata(path)
    except (FileNotFoundError, tf.errors.NotFoundError):
        return None
    except json.JSONDecodeError as e:
        raise ValueError(f"{export.METADATA_FILE} of {path} is not valid JSON: {e}") from e


class _FailedVersion:
    """A version that could not be loaded: END, with the load error."""

    def __init__(self, version, error_code, error):
        self.version = version
        self.state = "END"
        self.error_code = error_code
        self.error = error


class ModelManager:
    """Watches a TF Serving base path and keeps the latest version loaded (latest-1 policy)."""

    def __init__(self, model_base_path, model_name, poll_interval_s=DEFAULT_POLL_INTERVAL_S,
                 max_batch_size=None, warm_up=True):
        if not poll_interval_s > 0:           # 0 would poll in a busy loop while idle
            raise ValueError(f"poll_interval_s must be above 0, got {poll_interval_s}")
        self.model_base_path = os.path.abspath(model_base_path)
        self.model_name = model_name
        self.poll_interval_s = poll_interval_s
        self.max_batch_size = max_batch_size
        self.warm_up = warm_up
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._said_empty = False
        self._current = None
        # version -> LoadedModel or _FailedVersion, for GetModelStatus.
        self._history = {}
        # version -> (fingerprint that failed to load, tries); version -> last fingerprint.
        self._failures = {}
        self._seen = {}
        self._stop = threading.Event()
        self._thread = None

    def versions_dir(self):
        """`<base>/<version>/` as TF Serving reads it; `<base>/<model_name>/<version>/` too."""
        if numeric_dirs(self.model_base_path):
            return self.model_base_path
        nested = os.path.join(self.model_base_path, self.model_name)
        return nested if os.path.isdir(nested) else self.model_base_path

    def serving_version(self):
        """The version requests go to now, or None before the first load."""
        current = self._current
        return current.version if current is not None else None

    def _candidates(self):
        """(version, path) of every version ready to load.

        `saved_model.pb` marks a version as complete. A copy that does not write it last may
        still be running, so while a version is served a new one counts only once its files
        (names, sizes, mtimes) are unchanged since the last poll; a failed load is retried a few
        polls, and again whenever the files change.
        """
        root = self.versions_dir()
        found = []
        for version in numeric_dirs(root):
            path = os.path.join(root, str(version))
            if not os.path.exists(os.path.join(path, "saved_model.pb")):
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
        """Loads the highest ready version if it is not the one served; returns True on swap."""
        # One load at a time (the poller and an explicit poll() may race).
        with self._poll_lock:
            return self._poll()

    def _poll(self):
        candidates = self._candidates()
        if not candidates:
            if not self._said_empty:           # once, until a version shows up
                log.warning("no servable version under %s yet: waiting for a directory named "
                            "by a number that holds saved_model.pb (e.g. %s/1)",
                            self.model_base_path, self.model_base_path)
                self._said_empty = True
            return False
        self._said_empty = False
        version, path = max(candidates)
        current = self._current
        if current is not None and current.version == version:
            return False
        try:
            model = LoadedModel(version, path, self.max_batch_size)
            warmed = model.warm_up() if self.warm_up else 0
        except Exception as e:  # noqa: BLE001 - a half-copied version is retried on later polls
            self._load_failed(version, path, e)
            return False
        with self._lock:
            old, self._current = self._current, model
            model.state = "AVAILABLE"
            self._history[version] = model
            if old is not None:
                old.state = "UNLOADING"
                self._retire(old)
        log.info("serving %s version %d from %s (%d warm-up requests)", self.model_name, version,
                 path, warmed)
        return True

    def _load_failed(self, version, path, e):
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
                    self._history[version] = _FailedVersion(version, errors.error_code_of(e),
                                                            str(e))

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
                raise errors.servable_not_found(name, version)
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
                raise errors.ServingError(grpc.StatusCode.NOT_FOUND,
                                          f"Could not find any versions of model {name}")
            if version is not None:
                if version not in self._history:
                    raise errors.ServingError(grpc.StatusCode.NOT_FOUND,
                                              f"Could not find version {version} of model {name}")
                entries = [self._history[version]]
            else:
                entries = sorted(self._history.values(), key=lambda m: -m.version)
            return [(m.version, m.state, m.error_code, m.error) for m in entries]

    def start(self):
        try:
            self.poll()
        except Exception:  # noqa: BLE001 - the poller retries; a bad listing must not stop it
            log.exception("version poll failed")
        self._thread = threading.Thread(target=self._poll_loop, name="serving-version-poller",
                                        daemon=True)
        self._thread.start()

    def _poll_loop(self):
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - the poller must outlive a bad directory listing
                log.exception("version poll failed")

    def stop(self, timeout=10.0):
        """Stops polling; waits up to `timeout` seconds for a load in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)


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


def numeric_dirs(root):
    """Version numbers under `root` (its subdirectories named in ASCII digits), ascending.

    Not str.isdigit() alone: it accepts "²" or "٣", which int() rejects or reads as a number
    whose directory name is not str(version).
    """
    try:
        names = os.listdir(root)
    except OSError:
        return []
    return sorted(int(n) for n in names
                  if n.isascii() and n.isdigit() and n == str(int(n))
                  and os.path.isdir(os.path.join(root, n)))
