"""Tensor encoding for the front ends: TensorProto (gRPC) and JSON (REST) to and from numpy.

Decoders are lazy: a front end hands the predictor `alias -> decoder`, and the predictor calls
`decoder(dtype, alias)` only once the alias is known to be in the signature, so that a request is
never decoded against the wrong dtype and the error names the signature's expectation.
"""

import base64

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from serving import errors


def shape_str(shape):
    """TF Serving's shape notation: [-1,64,64,3] with -1 for any size."""
    return "[" + ",".join("-1" if d is None else str(d) for d in shape) + "]"


def proto_decoder(proto, max_elements):
    """A decoder that checks a TensorProto's dtype and size and returns it as numpy.

    Args:
      max_elements: largest element count accepted; a TensorProto may hold one value for a
        whole shape, so this caps what decoding can allocate.
    """

    def decode(dtype, alias):
        expected = tf.as_dtype(dtype).as_datatype_enum
        if proto.dtype != expected:
            try:
                got = tf.dtypes.as_dtype(proto.dtype).name
            except TypeError:
                got = f"DataType {proto.dtype}"
            raise errors.invalid(f"input \"{alias}\" has dtype {got} but the signature expects "
                                 f"{tf.as_dtype(dtype).name}")
        dims = [d.size for d in proto.tensor_shape.dim]
        if any(d < 0 for d in dims):
            raise errors.invalid(f"input \"{alias}\" has an unknown dimension in shape {dims}")
        if int(np.prod(dims, dtype=np.float64)) > max_elements:
            raise errors.invalid(f"input \"{alias}\" of shape {shape_str(dims)} has more than "
                                 f"{max_elements} elements")
        try:
            return tf.make_ndarray(proto)
        except (ValueError, TypeError) as e:
            raise errors.invalid(f"input \"{alias}\" is a malformed TensorProto: {e}") from e
    return decode


def to_tensor_proto(array):
    """TensorProto of an array; numbers as raw tensor_content (cheaper than make_tensor_proto)."""
    if array.dtype.kind in "OSU":
        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(dtype=tf.as_dtype(array.dtype).as_datatype_enum,
                                   tensor_content=np.ascontiguousarray(array).tobytes())
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    return proto


def json_decoder(value):
    """A decoder of a JSON value to the signature's dtype, without silent truncation."""

    def decode(dtype, alias):
        if np.dtype(dtype) == np.object_:
            return np.array(_json_bytes(value), dtype=object)
        try:
            raw = np.asarray(value)
        except ValueError as e:
            raise errors.invalid(f"input \"{alias}\" is a ragged JSON list: {e}") from e
        if raw.dtype.kind not in "biuf":
            raise errors.invalid(f"input \"{alias}\" must hold numbers, got {raw.dtype}")
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            if raw.dtype.kind == "f" or (raw.size and (raw.min() < info.min
                                                       or raw.max() > info.max)):
                raise errors.invalid(f"input \"{alias}\" must hold {np.dtype(dtype).name} "
                                     f"integers in [{info.min}, {info.max}]")
        return raw.astype(dtype)
    return decode


def _json_bytes(value):
    """JSON strings (text, or TF Serving's {"b64": ...} for binary) as bytes, nested as sent."""
    if isinstance(value, dict) and "b64" in value:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_json_bytes(v) for v in value]
    return value.encode() if isinstance(value, str) else value


def to_json(value):
    """JSON of an output: numbers as lists, strings as text (or {"b64": ...} if not UTF-8)."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode()}
    array = np.asarray(value)
    if array.dtype.kind in "OS":
        return [to_json(a) for a in array] if array.ndim else to_json(array.item())
    return array.tolist()
