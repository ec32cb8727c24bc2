"""gRPC client for the AMC-GAN model over TF Serving's API (this server or stock TF Serving).

    video, velocity = generate_video("127.0.0.1:8500", "face.png", "wave", seed=3)
    write_gif(video, "wave.gif")

Uses the official `PredictionServiceStub`; class names come from GetModelMetadata's
`amc_metadata` entry, or from the `metadata` signature where the server (stock TF Serving) does
not have that entry.
"""

import json
import os

import numpy as np

DEFAULT_MODEL_NAME = "amc_gan"
DEFAULT_TIMEOUT_S = 60.0
# Matches the server's default receive limit; videos are ~12 KiB a frame.
MAX_MESSAGE_BYTES = 64 << 20


def _channel(server):
    import grpc
    return grpc.insecure_channel(server, options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])


def load_image(image, size):
    """A PNG/JPEG path or an array as uint8 (size, size, 3), center-cropped and resized."""
    from PIL import Image
    if isinstance(image, (str, os.PathLike)):
        img = Image.open(image).convert("RGB")
    else:
        array = np.asarray(image)
        if array.dtype != np.uint8:
            raise ValueError(f"appearance array must be uint8, got {array.dtype}")
        if array.ndim != 3 or array.shape[-1] != 3:
            raise ValueError(f"appearance must be (H, W, 3) RGB, got shape {array.shape}")
        if array.shape[:2] == (size, size):
            return array
        img = Image.fromarray(array)
    w, h = img.size
    side = min(w, h)
    img = img.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side,
                    (h - side) // 2 + side))
    return np.asarray(img.resize((size, size), Image.BICUBIC), np.uint8)


def get_metadata(server, model_name=DEFAULT_MODEL_NAME, timeout=DEFAULT_TIMEOUT_S):
    """The amc metadata dict (class_names, num_frames, num_keypoints, preset, ...)."""
    import grpc
    from google.protobuf import wrappers_pb2
    from tensorflow_serving.apis import (get_model_metadata_pb2, predict_pb2,
                                         prediction_service_pb2_grpc)

    with _channel(server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = model_name
        request.metadata_field.append("amc_metadata")
        try:
            response = stub.GetModelMetadata(request, timeout=timeout)
            value = wrappers_pb2.StringValue()
            response.metadata["amc_metadata"].Unpack(value)
            return json.loads(value.value)
        except grpc.RpcError as e:
            # Stock TF Serving only knows signature_def: ask the `metadata` signature instead.
            if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = "metadata"
        request.output_filter.append("metadata_json")
        response = stub.Predict(request, timeout=timeout)
        return json.loads(response.outputs["metadata_json"].string_val[0])


def resolve_class(motion, class_names):
    """A class id from an id or a name (case-insensitive)."""
    if isinstance(motion, (int, np.integer)) or str(motion).lstrip("-").isdigit():
        class_id = int(motion)
        if not 0 <= class_id < len(class_names):
            raise ValueError(f"motion class {class_id} is outside [0, {len(class_names)}); "
                             f"classes: {', '.join(class_names)}")
        return class_id
    lowered = [n.lower() for n in class_names]
    if str(motion).lower() not in lowered:
        raise ValueError(f"unknown motion class {motion!r}; classes: {', '.join(class_names)}")
    return lowered.index(str(motion).lower())


def predict(server, inputs, model_name=DEFAULT_MODEL_NAME, signature="generate", version=None,
            timeout=DEFAULT_TIMEOUT_S):
    """One Predict call with numpy inputs; returns {output alias: numpy array}."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    for alias, array in inputs.items():
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(array))
    with _channel(server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=timeout)
    return {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}


def generate_video(server, image, motion, seed=0, model_name=DEFAULT_MODEL_NAME,
                   velocity=None, timeout=DEFAULT_TIMEOUT_S, metadata=None):
    """Generates one video over gRPC, with the inputs the model's metadata says it takes.

    Args:
      server: "host:port" of the gRPC endpoint.
      image: appearance as a PNG/JPEG path or a uint8 (H, W, 3) array; required by models that
        generate from an appearance, ignored (may be None) by the others.
      motion: class id or class name.
      seed: same seed and inputs give the same video.
      velocity: float32 (T-1, 2k) for `generate_with_velocity` (models with velocities); None
        lets the model draw them from its bank.
      metadata: the model's metadata if already fetched (saves one call).

    Returns:
      (video uint8 (T, H, W, 3) with frame 0 the appearance where there is one, velocity float32
      (T-1, 2k) or None for models without velocities).
    """
    metadata = metadata or get_metadata(server, model_name, timeout)
    signature = "generate"
    known = metadata["signature_inputs"]
    if velocity is not None:
        signature = "generate_with_velocity"
        if signature not in known:
            raise ValueError(f"model {metadata['model']!r} takes no velocities")
    values = {"motion_class": np.array([resolve_class(motion, metadata["class_names"])],
                                       np.int32),
              "seed": np.array([seed], np.int64)}
    if velocity is not None:
        values["velocity"] = np.asarray(velocity, np.float32)[None]
    if "appearance" in known[signature]:
        if image is None:
            raise ValueError(f"model {metadata['model']!r} generates from an appearance: give "
                             f"an image")
        values["appearance"] = load_image(image, int(metadata["frame_size"]))[None]
    inputs = {name: values[name] for name in known[signature]}
    outputs = predict(server, inputs, model_name, signature, timeout=timeout)
    velocity = outputs.get("velocity")
    return outputs["video"][0], None if velocity is None else velocity[0]


def write_gif(video, path, fps=8):
    """Writes a uint8 (T, H, W, 3) video as a looping GIF."""
    import imageio.v2 as imageio
    imageio.mimsave(path, list(np.asarray(video, np.uint8)), duration=1.0 / fps, loop=0)
    return path


def write_mp4(video, path, fps=8):
    """Writes an MP4 with OpenCV; returns None where no MP4 writer is available."""
    import cv2
    video = np.asarray(video, np.uint8)
    h, w = video.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        return None
    for frame in video:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path if os.path.exists(path) and os.path.getsize(path) > 0 else None


def write_contact_sheet(videos, path, row_labels=None, label_width=96):
    """Writes videos (N, T, H, W, 3) or one (T, H, W, 3) as a PNG grid: a row per video."""
    from PIL import Image, ImageDraw
    videos = np.asarray(videos, np.uint8)
    if videos.ndim == 4:
        videos = videos[None]
    n, t, h, w, _ = videos.shape
    left = label_width if row_labels else 0
    sheet = Image.new("RGB", (left + t * w, n * h), "white")
    draw = ImageDraw.Draw(sheet)
    for i in range(n):
        for j in range(t):
            sheet.paste(Image.fromarray(videos[i, j]), (left + j * w, i * h))
        if row_labels:
            draw.text((4, i * h + h // 2 - 6), str(row_labels[i])[:16], fill="black")
    sheet.save(path)
    return path
