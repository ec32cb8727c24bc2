"""gRPC front end: TF Serving's PredictionService and ModelService over the predictor and manager.

Classify, Regress and MultiInference answer UNIMPLEMENTED (the servicer base class's default).
"""

import json
import logging

import grpc
from google.protobuf import wrappers_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from serving import codec, errors, versions

log = logging.getLogger(__name__)


def _requested_version(spec):
    """The version number a ModelSpec asks for; None for the latest."""
    if spec.WhichOneof("version_choice") == "version_label":
        raise errors.ServingError(grpc.StatusCode.NOT_FOUND,
                                  f"no version label \"{spec.version_label}\" is configured for "
                                  f"model {spec.name}; ask for a version number")
    return spec.version.value if spec.HasField("version") else None


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata.

    Args:
      max_tensor_bytes: the most one request tensor may decode to; a TensorProto may hold one
        value for a whole shape, so the message size limit alone bounds nothing.
    """

    def __init__(self, predictor, manager, max_tensor_bytes):
        self.predictor = predictor
        self.manager = manager
        self.max_tensor_bytes = max_tensor_bytes

    def Predict(self, request, context):
        spec = request.model_spec
        try:
            served, signature_name, outputs = self.predictor.predict(
                spec.name, _requested_version(spec), spec.signature_name,
                {k: codec.proto_decoder(v, self.max_tensor_bytes)
                 for k, v in request.inputs.items()},
                tuple(request.output_filter))
            response = predict_pb2.PredictResponse()
            response.model_spec.name = spec.name
            response.model_spec.version.value = served
            response.model_spec.signature_name = signature_name
            for alias, array in outputs.items():
                response.outputs[alias].CopyFrom(codec.to_tensor_proto(array))
            return response
        except errors.ServingError as e:
            context.abort(e.code, e.message)
        except Exception as e:  # noqa: BLE001 - answer INTERNAL, keep the server up
            log.exception("Predict failed")
            context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")

    def GetModelMetadata(self, request, context):
        spec = request.model_spec
        try:
            fields = list(request.metadata_field)
            if not fields:
                raise errors.invalid("GetModelMetadataRequest must specify at least one "
                                     "metadata_field")
            with self.manager.acquire(spec.name, _requested_version(spec)) as model:
                supported = {"signature_def"} | (
                    {versions.METADATA_FIELD} if model.metadata is not None else set())
                for field in fields:
                    if field not in supported:
                        raise errors.invalid(f"Metadata field {field} is not supported")
                response = get_model_metadata_pb2.GetModelMetadataResponse()
                response.model_spec.name = spec.name
                response.model_spec.version.value = model.version
                if "signature_def" in fields:
                    signature_map = get_model_metadata_pb2.SignatureDefMap()
                    for key, sig_def in model.signature_defs.items():
                        signature_map.signature_def[key].CopyFrom(sig_def)
                    response.metadata["signature_def"].Pack(signature_map)
                if versions.METADATA_FIELD in fields:
                    response.metadata[versions.METADATA_FIELD].Pack(
                        wrappers_pb2.StringValue(value=json.dumps(model.metadata)))
                return response
        except errors.ServingError as e:
            context.abort(e.code, e.message)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus."""

    def __init__(self, manager):
        self.manager = manager

    def GetModelStatus(self, request, context):
        spec = request.model_spec
        try:
            # The same rule as Predict's: a version label is NOT_FOUND (none is configured).
            states = self.manager.status(spec.name, _requested_version(spec))
        except errors.ServingError as e:
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
