"""A model server speaking TF Serving's gRPC (and REST) API, for where no TF Serving binary can be
installed.

Serves a base path in TF Serving layout (`<base>/<version>/`, a SavedModel per version;
`<base>/<model_name>/<version>/` is accepted too), built along TF Serving's own seams:

  versions.py      version source and manager: polling, load, warm-up, swap, retire, status
  predictor.py     signature lookup, the generic signature checks, the run
  codec.py         TensorProto / JSON <-> numpy, sizes checked before anything is decoded
  grpc_service.py  PredictionService (Predict, GetModelMetadata), ModelService (GetModelStatus)
  rest.py          TF Serving's REST API
  errors.py        ServingError and TF error -> gRPC status mapping

Bad requests get TF Serving's status codes: INVALID_ARGUMENT for missing / extra inputs, dtype,
shape, batch size, and the model's own checks (the exported graph's asserts, with their message);
NOT_FOUND for an unknown model or version; FAILED_PRECONDITION for an unknown signature (TF
Serving's own code for it); RESOURCE_EXHAUSTED (from gRPC) for a message over the size limit.
Limits are checked on what a request declares, before it is decoded: the batch size, and the
bytes each input decodes to (at most the message size limit).

Python API: `server = start(model_base_path, port=0)` -> `server.port`; `server.stop(grace)`.
"""

import concurrent.futures
import logging
import threading
import time

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving import grpc_service, predictor, rest, versions

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "amc_gan"
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20


class ModelServer:
    """The gRPC (and optional REST) server over one model base path.

    Args:
      model_base_path: TF Serving base path: `<base>/<version>/` SavedModels.
      model_name: the name requests must carry in model_spec.name.
      host: interface to bind; loopback unless told otherwise.
      port: gRPC port; 0 picks a free one (read `server.port` after `start()`).
      rest_port: REST port (TF Serving's `/v1/models/<name>:predict`); None for no REST.
      max_batch_size: request batch limit; None uses the model metadata's `max_batch_size`.
      max_message_bytes: largest request accepted (gRPC message, REST body); bigger ones get
        RESOURCE_EXHAUSTED (REST: 413). Also the most one input tensor may decode to.
      poll_interval_s: how often the base path is checked for a new version.
      workers: gRPC handler threads (concurrent requests); REST runs as many predicts at once.
      rest_timeout_s: a REST connection that sends nothing for this long is closed.
      rest_max_connections: REST connections served at once; more are answered 503.
      warm_up: replay the export's `assets.extra/tf_serving_warmup_requests` before serving a
        version, as TF Serving does.
    """

    def __init__(self, model_base_path, model_name=DEFAULT_MODEL_NAME, host="127.0.0.1",
                 port=8500, rest_port=None, max_batch_size=None,
                 max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES,
                 poll_interval_s=versions.DEFAULT_POLL_INTERVAL_S, workers=8, warm_up=True,
                 rest_timeout_s=rest.DEFAULT_TIMEOUT_S,
                 rest_max_connections=rest.DEFAULT_MAX_CONNECTIONS):
        self.manager = versions.ModelManager(model_base_path, model_name, poll_interval_s,
                                             max_batch_size, warm_up)
        self.predictor = predictor.Predictor(self.manager)
        self.host = host
        self.requested_port = port
        self.requested_rest_port = rest_port
        self.max_message_bytes = max_message_bytes
        self.workers = workers
        self.rest_timeout_s = rest_timeout_s
        self.rest_max_connections = rest_max_connections
        self.port = None
        self.rest_port = None
        self._grpc = None
        self._rest = None
        self._stopped = threading.Event()
        self._done = threading.Event()

    def start(self):
        self.manager.start()
        server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=self.workers,
                                                  thread_name_prefix="serving-grpc"),
            options=[("grpc.max_receive_message_length", self.max_message_bytes),
                     ("grpc.max_send_message_length", -1),
                     ("grpc.so_reuseport", 0)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            grpc_service.PredictionService(self.predictor, self.manager, self.max_message_bytes),
            server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            grpc_service.ModelService(self.manager), server)
        address = f"{_bracket(self.host)}:{self.requested_port}"
        self.port = server.add_insecure_port(address)
        if not self.port:
            self.manager.stop()
            raise OSError(f"could not bind the gRPC server to {address}")
        server.start()
        self._grpc = server
        if self.requested_rest_port is not None:
            try:
                self._rest = rest.RestServer(self.predictor, self.manager, self.host,
                                             self.requested_rest_port, self.max_message_bytes,
                                             self.rest_timeout_s, self.rest_max_connections,
                                             self.workers)
            except OSError as e:
                server.stop(0)
                self.manager.stop()
                raise OSError(e.errno, f"could not bind the REST server to {self.host}:"
                                       f"{self.requested_rest_port} ({e.strerror}); choose "
                                       f"another --rest-port, or -1 for no REST") from e
            self.rest_port = self._rest.start()
        log.info("gRPC on %s:%d%s", self.host, self.port,
                 f", REST on {self.host}:{self.rest_port}" if self._rest else "")
        return self

    def stop(self, grace=5.0):
        """Stops taking requests, lets in-flight ones finish for up to `grace` seconds.

        Returns after about `grace` at most; a request still computing then is abandoned (its
        thread finishes in the background: `amc-tf serve` exits without it).
        """
        if self._stopped.is_set():
            self._done.wait()
            return
        self._stopped.set()
        deadline = time.monotonic() + grace
        # Both front ends refuse new requests at once and share the one grace period.
        stopped = self._grpc.stop(grace) if self._grpc is not None else None
        if self._rest is not None:
            self._rest.stop(grace)
        if stopped is not None:
            stopped.wait(max(0.0, deadline - time.monotonic()) + 1.0)
        self.manager.stop(timeout=max(0.0, deadline - time.monotonic()))
        self._done.set()

    def wait(self):
        """Blocks until `stop()` (e.g. from a signal handler) is done."""
        self._done.wait()

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
        if server.manager.serving_version() == version:
            return
        time.sleep(0.05)
    raise TimeoutError(f"version {version} was not served within {timeout_s} s")
