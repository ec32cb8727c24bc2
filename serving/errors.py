"""Request errors and their gRPC status codes, mapped once for every front end.

A `ServingError` carries the code TF Serving would answer with; TensorFlow's own errors (e.g. the
InvalidArgumentError of a `tf.debugging` assert in the exported graph) keep their code, since TF
error codes and gRPC status codes both follow google.rpc.Code numbering.
"""

import re

import grpc


class ServingError(Exception):
    """A request error with the gRPC status code TF Serving would answer with."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message):
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def servable_not_found(name, version):
    spec = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
    return ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {spec}")


def status_code_of(error_code):
    """gRPC StatusCode for a google.rpc.Code number."""
    for code in grpc.StatusCode:
        if code.value[0] == int(error_code):
            return code
    return grpc.StatusCode.UNKNOWN


def error_code_of(e):
    """google.rpc.Code number of an exception: a ServingError's or TF error's, else UNKNOWN."""
    if isinstance(e, ServingError):
        return e.code.value[0]
    return int(getattr(e, "error_code", grpc.StatusCode.UNKNOWN.value[0]))


def from_op_error(e):
    """ServingError of a TF op error, with the useful line (the assert's text, not the trace)."""
    return ServingError(status_code_of(e.error_code),
                        _useful_line(getattr(e, "message", str(e)), type(e).__name__))


def from_undecodable_op_error(e):
    """ServingError of the UnicodeDecodeError TF raises instead of an op error whose message
    quotes bytes of the request that are not UTF-8 (e.g. ParseExample quoting a bad example).

    The op's code is lost with it; only errors about a request's own values quote them, so
    INVALID_ARGUMENT, with the message made readable.
    """
    return invalid(_useful_line(e.object.decode("utf-8", "replace"), "invalid input"))


def _useful_line(text, fallback):
    noise = ("Graph execution error", "Detected at node", "<stack traces", "[[", "Op:")
    lines = [re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", line.strip())
             for line in text.splitlines() if line.strip()]
    asserted = [line for line in lines if "assertion failed" in line]
    useful = [line for line in lines if line and not line.startswith(noise)]
    return (asserted or useful or lines or [fallback])[0]
