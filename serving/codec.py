"""Tensor encoding for the front ends: TensorProto (gRPC) and JSON (REST) to and from numpy.

A front end hands the predictor `alias -> input` (`ProtoInput`, `JsonInput`). The predictor calls
`input.header(dtype, alias)` first: it checks the dtype and returns the shape the request
declares, and rejects a tensor that would decode to more than `max_bytes`, all without
allocating it (a TensorProto may hold one value for a whole shape). Only once every input's
header has passed the signature's shape and batch checks does it call `input.decode`, so a
request is never decoded against the wrong dtype and never grows the server beyond its limits.
"""

import base64
import binascii

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from serving import errors

# What a decoded string costs beyond its bytes: its pointers and TF's string header.
STRING_ELEMENT_BYTES = 32
# TensorFlow's own rank limit (TensorShape::MaxDimensions).
_MAX_RANK = 254


def shape_str(shape):
    """TF Serving's shape notation: [-1,64,64,3] with -1 for any size."""
    return "[" + ",".join("-1" if d is None else str(d) for d in shape) + "]"


def _elements(dims, limit):
    """The element count of `dims`, or limit + 1 once it is past `limit` (no huge products)."""
    if 0 in dims:
        return 0
    count = 1
    for d in dims:
        count *= d
        if count > limit:
            return limit + 1
    return count


def _too_big(alias, dims, max_bytes):
    return errors.invalid(f"input \"{alias}\" of shape {shape_str(dims)} would decode to more "
                          f"than {max_bytes} bytes (the maximum message size)")


def _malformed(alias, why):
    return errors.invalid(f"input \"{alias}\" is a malformed TensorProto: {why}")


class ProtoInput:
    """A request tensor sent as a TensorProto (gRPC, warm-up records).

    Args:
      max_bytes: the most a decoded tensor may hold (numbers: elements x item size; strings:
        their lengths after broadcasting plus STRING_ELEMENT_BYTES each).
    """

    def __init__(self, proto, max_bytes):
        self.proto = proto
        self.max_bytes = max_bytes

    def header(self, dtype, alias):
        """The declared shape, once dtype, shape and decoded size are within bounds."""
        proto = self.proto
        expected = tf.as_dtype(dtype)
        if proto.dtype != expected.as_datatype_enum:
            try:
                got = tf.dtypes.as_dtype(proto.dtype).name
            except TypeError:
                got = f"DataType {proto.dtype}"
            raise errors.invalid(f"input \"{alias}\" has dtype {got} but the signature expects "
                                 f"{expected.name}")
        if proto.tensor_shape.unknown_rank:
            raise errors.invalid(f"input \"{alias}\" has an unknown rank")
        if len(proto.tensor_shape.dim) > _MAX_RANK:
            raise _malformed(alias, f"rank {len(proto.tensor_shape.dim)} is over TensorFlow's "
                                    f"limit of {_MAX_RANK}")
        dims = [d.size for d in proto.tensor_shape.dim]
        if any(d < 0 for d in dims):
            raise errors.invalid(f"input \"{alias}\" has an unknown dimension in shape {dims}")
        if expected == tf.string:
            if proto.tensor_content:
                raise _malformed(alias, "strings cannot be sent as tensor_content")
            values = proto.string_val
            count = _elements(dims, self.max_bytes // STRING_ELEMENT_BYTES)
            if len(values) > count:
                raise _malformed(alias, f"{len(values)} values for {count} elements")
            # make_ndarray repeats the last value over the elements not sent.
            last = len(values[-1]) if values else 0
            size = (sum(len(v) for v in values) + (count - len(values)) * last
                    + count * STRING_ELEMENT_BYTES)
        else:
            itemsize = np.dtype(dtype).itemsize
            count = _elements(dims, self.max_bytes // itemsize)
            size = count * itemsize
            if proto.tensor_content and len(proto.tensor_content) != size \
                    and size <= self.max_bytes:
                raise _malformed(alias, f"tensor_content holds {len(proto.tensor_content)} "
                                        f"bytes, shape {shape_str(dims)} of "
                                        f"{expected.name} needs {size}")
        if size > self.max_bytes:
            raise _too_big(alias, dims, self.max_bytes)
        return dims

    def decode(self, dtype, alias):
        """The tensor as numpy; call `header` first (it bounds what this allocates)."""
        try:
            return tf.make_ndarray(self.proto)
        except (ValueError, TypeError, OverflowError) as e:
            raise _malformed(alias, e) from e


def proto_decoder(proto, max_bytes):
    """`ProtoInput` of a TensorProto whose decoded size may not pass `max_bytes`."""
    return ProtoInput(proto, max_bytes)


def to_tensor_proto(array):
    """TensorProto of an array; numbers as raw tensor_content (cheaper than make_tensor_proto)."""
    if array.dtype.kind in "OSU":
        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(dtype=tf.as_dtype(array.dtype).as_datatype_enum,
                                   tensor_content=np.ascontiguousarray(array).tobytes())
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    return proto


# Deeper JSON is no tensor numpy can hold (its own limit is 64 dimensions).
_MAX_JSON_RANK = 32


class JsonInput:
    """A request tensor sent as JSON (REST): nested lists of numbers, strings or {"b64": ...}.

    Every value is explicit in the body (JSON cannot broadcast), yet one character per number
    would still decode to 8 bytes of int64: `max_bytes` bounds it as for TensorProtos.
    """

    def __init__(self, value, max_bytes):
        self.value = value
        self.max_bytes = max_bytes
        self._checked = None

    def header(self, dtype, alias):
        """The shape of the nested lists, once every value is of the signature's kind."""
        shape, leaves = _json_shape(self.value, alias)
        if np.dtype(dtype) == np.object_:
            leaves = [_json_bytes(v, alias) for v in leaves]
            size = sum(len(v) for v in leaves) + len(leaves) * STRING_ELEMENT_BYTES
        else:
            _check_numbers(leaves, dtype, alias)
            size = len(leaves) * np.dtype(dtype).itemsize
        if size > self.max_bytes:
            raise _too_big(alias, shape, self.max_bytes)
        self._checked = (np.dtype(dtype), shape, leaves)
        return shape

    def decode(self, dtype, alias):
        if self._checked is None or self._checked[0] != np.dtype(dtype):
            self.header(dtype, alias)
        _, shape, leaves = self._checked
        if np.dtype(dtype) == np.object_:
            array = np.empty(len(leaves), dtype=object)
            array[:] = leaves
            return array.reshape(shape)
        try:
            return np.array(leaves, dtype=dtype).reshape(shape)
        except (OverflowError, ValueError) as e:
            raise errors.invalid(f"input \"{alias}\" holds a number out of the range of "
                                 f"{np.dtype(dtype).name}: {e}") from e


def json_decoder(value, max_bytes):
    """`JsonInput` of a JSON value whose decoded size may not pass `max_bytes`."""
    return JsonInput(value, max_bytes)


def _json_shape(value, alias):
    """(shape, flat values) of nested JSON lists, level by level: no recursion to exhaust."""
    shape, level = [], [value]
    while level and isinstance(level[0], list):
        n = len(level[0])
        if any(not isinstance(v, list) or len(v) != n for v in level):
            raise errors.invalid(f"input \"{alias}\" is a ragged JSON list: the lists at depth "
                                 f"{len(shape)} differ in length or nesting")
        shape.append(n)
        if len(shape) > _MAX_JSON_RANK:
            raise errors.invalid(f"input \"{alias}\" is nested deeper than {_MAX_JSON_RANK} "
                                 f"lists")
        level = level[0] if len(level) == 1 else [x for v in level for x in v]
    if any(isinstance(v, list) for v in level):
        raise errors.invalid(f"input \"{alias}\" is a ragged JSON list: the lists at depth "
                             f"{len(shape)} differ in length or nesting")
    return shape, level


def _check_numbers(values, dtype, alias):
    """JSON numbers only (no booleans, which numpy would take for 0 / 1), without truncation."""
    for v in values:
        if type(v) not in (int, float):
            raise errors.invalid(f"input \"{alias}\" must hold numbers, got "
                                 f"{_json_type(v)}")
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if any(type(v) is float for v in values) or (values and (min(values) < info.min
                                                                 or max(values) > info.max)):
            raise errors.invalid(f"input \"{alias}\" must hold {np.dtype(dtype).name} "
                                 f"integers in [{info.min}, {info.max}]")


def _json_type(value):
    return {bool: "a boolean", str: "a string", dict: "an object",
            type(None): "null"}.get(type(value), type(value).__name__)


def _json_bytes(value, alias):
    """A JSON string (text, or TF Serving's {"b64": ...} for binary) as bytes."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError) as e:
            raise errors.invalid(f"input \"{alias}\" holds invalid base64: {e}") from e
    raise errors.invalid(f"input \"{alias}\" must hold strings or {{\"b64\": string}} "
                         f"objects, got {_json_type(value)}")


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
