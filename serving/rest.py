"""TF Serving's REST API over the same predictor as the gRPC server.

  POST /v1/models/<name>[/versions/<v>]:predict   {"signature_name", "instances" | "inputs"}
  GET  /v1/models/<name>[/versions/<v>]           model status
  GET  /v1/models/<name>[/versions/<v>]/metadata  signature_def map (+ the export's metadata)

Row format ("instances") answers {"predictions": [...]}, columnar ("inputs") answers
{"outputs": {...}}; errors answer {"error": message} with TF Serving's HTTP codes. Every request
gets an answer: 400 for a bad request (malformed HTTP or JSON included), 411 for a body without
Content-Length, 413 for a body over the limit, 503 over the connection cap or while stopping, 500
only for a fault of the server's own.

A connection is served by one thread; at most `max_connections` are open at once (more are
answered 503 and closed from the accepting thread, without a thread of their own), and one that
sends nothing for `timeout_s` seconds is closed.
"""

import http.server
import json
import logging
import re
import socket
import sys
import threading
import time

import grpc
from google.protobuf import json_format

from serving import codec, errors, versions

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_CONNECTIONS = 64
# How long a closing connection reads what the client still sends (see shutdown_request).
_LINGER_S = 1.0

_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]+))?"
                   r"(?P<rest>:predict|/metadata)?$")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}


class _HttpError(Exception):
    """An answer with an HTTP status of its own (no gRPC code maps to it); closes the connection."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class RestServer:
    """A threaded HTTP server answering TF Serving's REST predict / status / metadata calls.

    Args:
      max_body_bytes: largest request body (413 above it); also the most one input may decode to.
      timeout_s: a connection idle this long (headers or body not coming) is closed.
      max_connections: connections served at once; more are answered 503 and closed.
      max_predicts: predict requests parsed and run at once; more wait. A JSON body takes
        several times its size once parsed: this, not the connection cap, bounds that memory.
    """

    def __init__(self, predictor, manager, host, port, max_body_bytes,
                 timeout_s=DEFAULT_TIMEOUT_S, max_connections=DEFAULT_MAX_CONNECTIONS,
                 max_predicts=8):
        handler = _handler(predictor, manager, max_body_bytes, timeout_s, max_predicts)
        self._httpd = _HttpServer((host, port), handler, max_connections)
        self._thread = None

    def start(self):
        # shutdown() waits up to one poll interval (0.5 s by default) after the grace period.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.1,),
                                        name="serving-rest", daemon=True)
        self._thread.start()
        return self._httpd.server_address[1]

    def stop(self, grace=5.0):
        """Refuses new requests, lets in-flight ones finish for up to `grace` seconds, then
        closes every connection."""
        deadline = time.monotonic() + grace
        # The accepting thread keeps running through the grace period, so a new connection gets
        # a 503 instead of a reset from a listening socket closed under it.
        self._httpd.stopping = True
        self._httpd.wait_idle(deadline)
        self._httpd.shutdown()
        self._httpd.refuse_backlog()
        self._httpd.server_close()
        self._httpd.close_connections()


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, max_connections):
        super().__init__(address, handler)
        self.max_connections = max_connections
        self.stopping = False
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Condition()
        self._connections = set()
        self._in_flight = 0

    def process_request(self, request, client_address):
        # Runs on the accepting thread: over the cap, answer and close here, with no new thread.
        if self.stopping:
            self._refuse(request, "the server is stopping")
            return
        if not self._slots.acquire(blocking=False):
            self._refuse(request, f"too many connections: the server serves at most "
                                  f"{self.max_connections} at once")
            return
        with self._lock:
            self._connections.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release(request)
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(request)

    def _release(self, request):
        with self._lock:
            self._connections.discard(request)
        self._slots.release()

    def _refuse(self, request, message):
        body = json.dumps({"error": message}).encode()
        try:
            request.setblocking(False)
            try:
                request.recv(1 << 16)   # what was sent already: closing on it would reset
            except OSError:
                pass
            request.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                         b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            pass
        try:
            request.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.close_request(request)

    def refuse_backlog(self):
        """Answers 503 to the connections the kernel accepted after the accepting thread
        stopped: closing the listening socket would reset them."""
        self.socket.setblocking(False)
        while True:
            try:
                request, _ = self.socket.accept()
            except OSError:
                return
            self._refuse(request, "the server is stopping")

    def shutdown_request(self, request):
        # A lingering close: the client may still be sending a body this server did not read
        # (e.g. over the limit); closing on unread data resets the connection, which can destroy
        # the answer before the client reads it. Drain for a moment first.
        try:
            request.shutdown(socket.SHUT_WR)
            request.settimeout(_LINGER_S)
            deadline = time.monotonic() + _LINGER_S
            while time.monotonic() < deadline and request.recv(1 << 16):
                pass
        except OSError:
            pass
        self.close_request(request)

    def handle_error(self, request, client_address):
        # A client that resets its connection is no server fault: no traceback on stderr.
        level = logging.DEBUG if isinstance(sys.exc_info()[1], OSError) else logging.WARNING
        log.log(level, "REST connection from %s failed", client_address, exc_info=True)

    def begin_request(self):
        with self._lock:
            if self.stopping:
                return False
            self._in_flight += 1
            return True

    def end_request(self):
        with self._lock:
            self._in_flight -= 1
            self._lock.notify_all()

    def wait_idle(self, deadline):
        with self._lock:
            self._lock.wait_for(lambda: self._in_flight == 0,
                                timeout=max(0.0, deadline - time.monotonic()))

    def close_connections(self):
        """Wakes every connection thread (idle keep-alive ones wait for a request otherwise)."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _handler(predictor, manager, max_body_bytes, timeout_s, max_predicts):
    predict_slots = threading.BoundedSemaphore(max_predicts)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Error answers carry a status line even before the request line is understood.
        default_request_version = "HTTP/1.0"
        timeout = timeout_s

        def log_message(self, fmt, *args):  # requests are logged by the caller's logging setup
            log.debug("REST %s", fmt % args)

        def _send(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

        def send_error(self, code, message=None, explain=None):
            """http.server's own errors (malformed request line or headers) as JSON too."""
            self.close_connection = True
            self._send(code, {"error": message or self.responses.get(code, ("error",))[0]})

        def parse_request(self):
            self.command, self.requestline = None, ""
            self.request_version = self.default_request_version
            if not self.raw_requestline.strip():
                # An empty line before a request line is ignored (RFC 9112, 2.2); only one.
                self.raw_requestline = self.rfile.readline(65537)
                if not self.raw_requestline:
                    self.close_connection = True
                    return False
            words = str(self.raw_requestline, "iso-8859-1").split()
            if len(self.raw_requestline) > 65536 or len(words) != 3:
                # Also HTTP/0.9 ("GET /path"): no headers, no status line, nothing of this API.
                self.send_error(400, "Bad request line: expected METHOD PATH HTTP/1.x")
                return False
            return super().parse_request()

        def _route(self, method):
            if not self.server.begin_request():
                self.close_connection = True
                self._send(503, {"error": "the server is stopping"})
                return
            try:
                self._answer(method)
            except _HttpError as e:
                self.close_connection = True
                self._send(e.status, {"error": e.message})
            except errors.ServingError as e:
                self._send(_HTTP_STATUS.get(e.code, 500), {"error": e.message})
            except (ConnectionError, TimeoutError):
                self.close_connection = True     # the client is gone or stalled: no answer
            except Exception as e:  # noqa: BLE001 - answer 500, keep the server up
                log.exception("REST %s %s failed", method, self.path)
                self.close_connection = True
                self._send(500, {"error": f"{type(e).__name__}: {e}"})
            finally:
                self.server.end_request()

        def _answer(self, method):
            match = _PATH.match(self.path)
            if not match or (method == "POST") != (match["rest"] == ":predict"):
                if method == "POST":
                    self.close_connection = True    # its body is not read
                self._send(404, {"error": f"Malformed request: {method} {self.path}"})
                return
            name = match["name"]
            version = int(match["version"]) if match["version"] else None
            if match["rest"] == ":predict":
                # The body is read outside the slots (a slow client must not hold one).
                body = self._body()
                with predict_slots:
                    answer = self._predict(body, name, version)
                self._send(200, answer)
            elif match["rest"] == "/metadata":
                self._send(200, self._metadata(name, version))
            else:
                states = manager.status(name, version)
                self._send(200, {"model_version_status": [
                    {"version": str(v), "state": s,
                     "status": {"error_code": errors.status_code_of(code).name,
                                "error_message": error}}
                    for v, s, code, error in states]})

        def do_GET(self):
            if self.headers.get("Transfer-Encoding") is not None or \
                    self.headers.get("Content-Length", "0") != "0":
                self.close_connection = True        # a body it will not read
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def _body(self):
            """The request body, read only once its length is known and within the limit."""
            if self.headers.get("Transfer-Encoding") is not None:
                raise _HttpError(411, "Transfer-Encoding is not supported: send the body with "
                                      "a Content-Length")
            lengths = set(self.headers.get_all("Content-Length") or [])
            if not lengths:
                raise _HttpError(411, "a predict request needs a Content-Length")
            if len(lengths) > 1 or not _CONTENT_LENGTH.fullmatch(next(iter(lengths))):
                self.close_connection = True       # where the body ends is unknown
                raise errors.invalid(f"invalid Content-Length: {', '.join(sorted(lengths))}")
            length = int(next(iter(lengths)))
            if length > max_body_bytes:
                # Drain nothing: the connection is closed after this answer.
                self.close_connection = True
                raise errors.ServingError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"request body of {length} bytes is over the limit of {max_body_bytes}")
            try:
                body = self.rfile.read(length)
            except TimeoutError as e:
                raise _HttpError(408, f"the body did not arrive: nothing for {timeout_s} s") from e
            if len(body) < length:
                self.close_connection = True
                raise errors.invalid(f"the body ended after {len(body)} of its {length} bytes")
            return body

        def _predict(self, body, name, version):
            try:
                body = json.loads(body or b"{}")
            except (ValueError, RecursionError) as e:   # bad JSON, bad UTF-8, too deep
                raise errors.invalid(f"JSON Parse error: {type(e).__name__}: {e}") from e
            if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
                raise errors.invalid(
                    "Missing 'inputs' or 'instances' key (exactly one is required)")
            signature_name = body.get("signature_name", "")
            if not isinstance(signature_name, str):
                raise errors.invalid("'signature_name' must be a string")
            row_format = "instances" in body
            data = body["instances"] if row_format else body["inputs"]
            if row_format:
                if not isinstance(data, list) or not data:
                    raise errors.invalid("'instances' must be a non-empty list")
                if not isinstance(data[0], dict):
                    raise errors.invalid("instances must be objects naming each input")
                keys = set(data[0])
                if any(not isinstance(row, dict) or set(row) != keys for row in data):
                    raise errors.invalid("every instance must have the same named inputs")
                data = {k: [row[k] for row in data] for k in keys}
            if not isinstance(data, dict):
                raise errors.invalid("'inputs' must be an object naming each input")
            inputs = {alias: codec.json_decoder(value, max_body_bytes)
                      for alias, value in data.items()}
            _, _, outputs = predictor.predict(name, version, signature_name, inputs)
            if row_format:
                batches = {v.shape[0] if v.ndim else None for v in outputs.values()}
                if len(batches) != 1 or None in batches:
                    raise errors.invalid("the outputs of this signature are not batched alike: "
                                         "ask with 'inputs' (columnar format)")
                return {"predictions": [{k: codec.to_json(v[i]) for k, v in outputs.items()}
                                        for i in range(batches.pop())]}
            return {"outputs": {k: codec.to_json(v) for k, v in outputs.items()}}

        def _metadata(self, name, version):
            with manager.acquire(name, version) as model:
                signature_map = {k: json_format.MessageToDict(v)
                                 for k, v in model.signature_defs.items()}
                metadata = {"signature_def": {"signature_def": signature_map}}
                if model.metadata is not None:
                    metadata[versions.METADATA_FIELD] = model.metadata
                return {"model_spec": {"name": name, "signature_name": "",
                                       "version": str(model.version)},
                        "metadata": metadata}

    return Handler
