"""Predict on a loaded version: signature lookup, the generic signature checks, the run.

The server knows a model only through its signatures: the checks here are those TF Serving makes
(input aliases, dtypes, shapes against each input's TensorSpec, a batch limit), plus the optional
`max_batch_size` of the export's metadata. What a model requires of its values (ranges, finite
numbers, ...) is checked by the exported graph itself; its asserts' InvalidArgumentError becomes
INVALID_ARGUMENT with the assert's message, as under stock TF Serving.
"""

import grpc
import numpy as np
import tensorflow as tf

from serving import codec, errors


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


def run(model, signature_name, inputs, output_filter=()):
    """Runs one request on a loaded version (served, or being warmed up).

    Args:
      model: a `versions.LoadedModel`.
      signature_name: the signature key; empty for TF Serving's default one.
      inputs: alias -> `codec.ProtoInput` / `codec.JsonInput` (header, then decode).
      output_filter: output aliases to return; empty for all.
    Returns:
      (signature name, {output alias: numpy array}).
    """
    signature_name = signature_name or tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
    sig = model.signatures.get(signature_name)
    if sig is None:
        # TF Serving's own code for an unknown signature key (predict_util.cc).
        raise errors.ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                                  f"Serving signature key \"{signature_name}\" not found.")
    arrays = _validate(sig, inputs, model.max_batch_size)
    for alias in output_filter:
        if alias not in sig.outputs:
            raise errors.invalid(f"output tensor alias not found in signature: {alias}. "
                                 f"Outputs expected to be in the set {{{','.join(sig.outputs)}}}.")
    try:
        outputs = sig.fn(**{k: tf.constant(v) for k, v in arrays.items()})
    except tf.errors.OpError as e:
        raise errors.from_op_error(e) from e
    except UnicodeDecodeError as e:
        raise errors.from_undecodable_op_error(e) from e
    return signature_name, {k: np.asarray(outputs[k].numpy())
                            for k in output_filter or sig.outputs}


def _validate(sig, inputs, max_batch_size):
    """The request's inputs as numpy arrays, once they match the signature.

    Shapes and the batch size are checked on what each input declares (`header`), before any
    input is decoded: a request over the limits never allocates its tensors.
    """
    sent, expected = set(inputs), set(sig.inputs)
    if sent != expected:
        if len(sent) != len(expected):
            raise errors.invalid(
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
                f"Missing but required: {{{','.join(sorted(expected - sent))}}}.")
        extra = sorted(sent - expected)[0]
        raise errors.invalid(f"input tensor alias not found in signature: {extra}. Inputs "
                             f"expected to be in the set {{{','.join(sorted(expected))}}}.")
    shapes = {}
    for alias, (dtype, shape) in sig.inputs.items():
        shapes[alias] = inputs[alias].header(dtype, alias)
        _check_shape(sig, alias, shapes[alias], shape)
    # Inputs whose leading dimension is free are batched: they must agree on the batch size.
    batches = {alias: shapes[alias][0] for alias, (_, shape) in sig.inputs.items()
               if shape and shape[0] is None}
    if batches:
        if len(set(batches.values())) > 1:
            raise errors.invalid("inputs have different batch sizes: " + ", ".join(
                f"\"{alias}\" {b}" for alias, b in sorted(batches.items())))
        batch = next(iter(batches.values()))
        if batch == 0:
            raise errors.invalid("batch size is 0: send at least one example")
        if max_batch_size and batch > max_batch_size:
            named = ", ".join(f"\"{alias}\"" for alias in sorted(batches))
            raise errors.invalid(f"batch size {batch} is larger than the maximum input batch "
                                 f"size {max_batch_size} (input{'s' * (len(batches) > 1)} "
                                 f"{named})")
    arrays = {}
    for alias, (dtype, shape) in sig.inputs.items():
        array = inputs[alias].decode(dtype, alias)
        if array.dtype != dtype and not (dtype == np.object_ and array.dtype.kind in "SO"):
            raise errors.invalid(f"input \"{alias}\" has dtype {array.dtype.name} but signature "
                                 f"\"{sig.name}\" expects {np.dtype(dtype).name}")
        if list(array.shape) != list(shapes[alias]):
            raise errors.invalid(f"input \"{alias}\" decoded to shape "
                                 f"{codec.shape_str(array.shape)}, not the declared "
                                 f"{codec.shape_str(shapes[alias])}")
        arrays[alias] = array
    return arrays


def _check_shape(sig, alias, got, shape):
    if len(got) != len(shape) or any(d is not None and d != a for d, a in zip(shape, got)):
        raise errors.invalid(f"input \"{alias}\" has shape {codec.shape_str(got)} "
                             f"but signature \"{sig.name}\" expects {codec.shape_str(shape)}")


class Predictor:
    """Predict on the served version of a model: shared by the gRPC and REST front ends."""

    def __init__(self, manager):
        self.manager = manager

    def predict(self, name, version, signature_name, inputs, output_filter=()):
        """`run` on the version a request names, held until it is done.

        Returns:
          (version, signature name, {output alias: numpy array}).
        """
        with self.manager.acquire(name, version) as model:
            signature_name, outputs = run(model, signature_name, inputs, output_filter)
            return model.version, signature_name, outputs
