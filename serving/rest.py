"""TF Serving's REST API over the same predictor as the gRPC server.

  POST /v1/models/<name>[/versions/<v>]:predict   {"signature_name", "instances" | "inputs"}
  GET  /v1/models/<name>[/versions/<v>]           model status
  GET  /v1/models/<name>[/versions/<v>]/metadata  signature_def map (+ amc_metadata)

Row format ("instances") answers {"predictions": [...]}, columnar ("inputs") answers
{"outputs": {...}}; errors answer {"error": message} with TF Serving's HTTP codes.
"""

import base64
import http.server
import json
import re
import threading

import grpc
import numpy as np
from google.protobuf import json_format

from serving import server as serving_server

_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                   r"(?P<rest>:predict|/metadata)?$")
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}


def _to_array(value, dtype, alias):
    """A JSON value as a numpy array of the signature's dtype, without silent truncation."""
    if np.dtype(dtype) == np.object_:
        def decode(v):
            if isinstance(v, dict) and "b64" in v:
                return base64.b64decode(v["b64"])
            if isinstance(v, list):
                return [decode(x) for x in v]
            return v.encode() if isinstance(v, str) else v
        return np.array(decode(value), dtype=object)
    try:
        raw = np.asarray(value)
    except ValueError as e:
        raise serving_server._invalid(f"input \"{alias}\" is a ragged JSON list: {e}") from e
    if raw.dtype.kind not in "biuf":
        raise serving_server._invalid(f"input \"{alias}\" must hold numbers, got {raw.dtype}")
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if raw.dtype.kind == "f" or (raw.size and (raw.min() < info.min or raw.max() > info.max)):
            raise serving_server._invalid(
                f"input \"{alias}\" must hold {np.dtype(dtype).name} integers in "
                f"[{info.min}, {info.max}]")
    return raw.astype(dtype)


def _to_json(value):
    """JSON of an output: numbers as lists, strings as text (or {"b64": ...} if not UTF-8)."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode()}
    array = np.asarray(value)
    if array.dtype.kind in "OS":
        return [_to_json(a) for a in array] if array.ndim else _to_json(array.item())
    return array.tolist()


class RestServer:
    """A threaded HTTP server answering TF Serving's REST predict / status / metadata calls."""

    def __init__(self, predictor, host, port, max_body_bytes):
        self.predictor = predictor
        handler = _handler(predictor, max_body_bytes)
        self._httpd = http.server.ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="amc-rest",
                                        daemon=True)
        self._thread.start()
        return self._httpd.server_address[1]

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(predictor, max_body_bytes):
    manager = predictor.manager

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # requests are logged by the caller's logging setup
            serving_server.log.debug("REST %s", fmt % args)

        def _send(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method):
            match = _PATH.match(self.path)
            if not match or (method == "POST") != (match["rest"] == ":predict"):
                self._send(404, {"error": f"Malformed request: {method} {self.path}"})
                return
            name = match["name"]
            version = int(match["version"]) if match["version"] else None
            try:
                if match["rest"] == ":predict":
                    self._send(200, self._predict(name, version))
                elif match["rest"] == "/metadata":
                    self._send(200, self._metadata(name, version))
                else:
                    states = manager.status(name, version)
                    self._send(200, {"model_version_status": [
                        {"version": str(v), "state": s,
                         "status": {"error_code": serving_server._status_code_of(code).name,
                                    "error_message": error}}
                        for v, s, code, error in states]})
            except serving_server.ServingError as e:
                self._send(_HTTP_STATUS.get(e.code, 500), {"error": e.message})

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def _predict(self, name, version):
            length = int(self.headers.get("Content-Length") or 0)
            if length > max_body_bytes:
                # Drain nothing: the connection is closed after this answer.
                self.close_connection = True
                raise serving_server.ServingError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"request body of {length} bytes is over the limit of {max_body_bytes}")
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError as e:
                raise serving_server._invalid(f"JSON Parse error: {e}") from e
            if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
                raise serving_server._invalid(
                    "Missing 'inputs' or 'instances' key (exactly one is required)")
            row_format = "instances" in body
            data = body["instances"] if row_format else body["inputs"]
            if row_format:
                if not isinstance(data, list) or not data:
                    raise serving_server._invalid("'instances' must be a non-empty list")
                if isinstance(data[0], dict):
                    keys = set(data[0])
                    if any(not isinstance(row, dict) or set(row) != keys for row in data):
                        raise serving_server._invalid(
                            "every instance must have the same named inputs")
                    data = {k: [row[k] for row in data] for k in keys}
                else:
                    raise serving_server._invalid(
                        "instances must be objects naming each input (the signature has "
                        "several inputs)")
            if not isinstance(data, dict):
                raise serving_server._invalid("'inputs' must be an object naming each input")
            inputs = {alias: (lambda v: lambda dtype, a: _to_array(v, dtype, a))(value)
                      for alias, value in data.items()}
            _, _, outputs = predictor.predict(name, version, body.get("signature_name", ""),
                                              inputs)
            if row_format:
                batch = next(iter(outputs.values())).shape[0]
                return {"predictions": [{k: _to_json(v[i]) for k, v in outputs.items()}
                                        for i in range(batch)]}
            return {"outputs": {k: _to_json(v) for k, v in outputs.items()}}

        def _metadata(self, name, version):
            with manager.acquire(name, version) as model:
                signature_map = {k: json_format.MessageToDict(v)
                                 for k, v in model.signature_defs.items()}
                return {"model_spec": {"name": name, "signature_name": "",
                                       "version": str(model.version)},
                        "metadata": {"signature_def": {"signature_def": signature_map},
                                     "amc_metadata": model.metadata}}

    return Handler
