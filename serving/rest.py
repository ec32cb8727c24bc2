"""TF Serving's REST API over the same predictor as the gRPC server.

  POST /v1/models/<name>[/versions/<v>]:predict   {"signature_name", "instances" | "inputs"}
  GET  /v1/models/<name>[/versions/<v>]           model status
  GET  /v1/models/<name>[/versions/<v>]/metadata  signature_def map (+ the export's metadata)

Row format ("instances") answers {"predictions": [...]}, columnar ("inputs") answers
{"outputs": {...}}; errors answer {"error": message} with TF Serving's HTTP codes.
"""

import http.server
import json
import logging
import re
import threading

import grpc
from google.protobuf import json_format

from serving import codec, errors, versions

log = logging.getLogger(__name__)

_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                   r"(?P<rest>:predict|/metadata)?$")
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}


class RestServer:
    """A threaded HTTP server answering TF Serving's REST predict / status / metadata calls."""

    def __init__(self, predictor, manager, host, port, max_body_bytes):
        handler = _handler(predictor, manager, max_body_bytes)
        self._httpd = http.server.ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="serving-rest",
                                        daemon=True)
        self._thread.start()
        return self._httpd.server_address[1]

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(predictor, manager, max_body_bytes):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # requests are logged by the caller's logging setup
            log.debug("REST %s", fmt % args)

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
                         "status": {"error_code": errors.status_code_of(code).name,
                                    "error_message": error}}
                        for v, s, code, error in states]})
            except errors.ServingError as e:
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
                raise errors.ServingError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"request body of {length} bytes is over the limit of {max_body_bytes}")
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError as e:
                raise errors.invalid(f"JSON Parse error: {e}") from e
            if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
                raise errors.invalid(
                    "Missing 'inputs' or 'instances' key (exactly one is required)")
            row_format = "instances" in body
            data = body["instances"] if row_format else body["inputs"]
            if row_format:
                if not isinstance(data, list) or not data:
                    raise errors.invalid("'instances' must be a non-empty list")
                if isinstance(data[0], dict):
                    keys = set(data[0])
                    if any(not isinstance(row, dict) or set(row) != keys for row in data):
                        raise errors.invalid(
                            "every instance must have the same named inputs")
                    data = {k: [row[k] for row in data] for k in keys}
                else:
                    raise errors.invalid(
                        "instances must be objects naming each input (the signature has "
                        "several inputs)")
            if not isinstance(data, dict):
                raise errors.invalid("'inputs' must be an object naming each input")
            inputs = {alias: codec.json_decoder(value) for alias, value in data.items()}
            _, _, outputs = predictor.predict(name, version, body.get("signature_name", ""),
                                              inputs)
            if row_format:
                batch = next(iter(outputs.values())).shape[0]
                return {"predictions": [{k: codec.to_json(v[i]) for k, v in outputs.items()}
                                        for i in range(batch)]}
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
