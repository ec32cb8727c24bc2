"""Serving over real gRPC on loopback with the official TF Serving stubs.

One SavedModel is exported per session through `export_serving_model` with the real Generator and
MotionClassifier (test preset, untrained weights) and served by `serving.server`.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import wrappers_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from amc_tf.data import features
from serving import client, export, server

CLASS_NAMES = ["raise_both_arms", "raise_one_arm", "wave_one_arm"]
NUM_KEYPOINTS = 9
MAX_BATCH = 4
MAX_MESSAGE_BYTES = 2 << 20
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _export(export_dir):
    from amc_tf.inference import VelocityBank
    from amc_tf.models import get_family
    from amc_tf.models.classifier import build_classifier
    from amc_tf.models.saving import load_classifier, save_model

    family = get_family("amc-gan")
    config = family.config("test", num_classes=len(CLASS_NAMES), num_keypoints=NUM_KEYPOINTS)
    rng = np.random.default_rng(0)
    # Distinct velocities per class so that class changes what is sampled (§3.1).
    velocity = rng.uniform(-0.5, 0.5, (12, config.num_frames - 1, 2 * NUM_KEYPOINTS))
    bank = VelocityBank(velocity, np.arange(12) % len(CLASS_NAMES), len(CLASS_NAMES))
    tf.keras.utils.set_random_seed(0)
    # The classifier goes through a .keras file as in the GAN Trainer (base_model).
    classifier = build_classifier(config)
    classifier.build()
    path = save_model(classifier, os.path.join(os.path.dirname(export_dir), "classifier.keras"))
    return export.export_serving_model(family, family.generator(family.build(config)),
                                       load_classifier(path), config, CLASS_NAMES, export_dir,
                                       velocity_bank=bank, max_batch_size=MAX_BATCH)


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("export") / "saved_model")
    metadata = _export(path)
    return path, metadata


@pytest.fixture(scope="session")
def model_server(exported, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving_model") / "amc_gan"
    shutil.copytree(exported[0], base / "1")
    srv = server.start(str(base), model_name="amc_gan", port=0, rest_port=0,
                       max_message_bytes=MAX_MESSAGE_BYTES, poll_interval_s=0.5)
    yield srv
    srv.stop(grace=2)


@pytest.fixture(scope="session")
def address(model_server):
    return f"127.0.0.1:{model_server.port}"


@pytest.fixture(scope="session")
def stub(address):
    channel = grpc.insecure_channel(address, options=[
        ("grpc.max_send_message_length", 64 << 20),
        ("grpc.max_receive_message_length", 64 << 20)])
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def _appearance(size, batch=1, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (batch, size, size, 3), dtype=np.uint8)


def _request(inputs, signature="generate", model_name="amc_gan", version=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for alias, value in inputs.items():
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
    return request


def _generate_inputs(meta, batch=1, classes=None, seeds=None):
    size = meta["frame_size"]
    return {"appearance": _appearance(size, batch),
            "motion_class": np.asarray(classes if classes is not None else [0] * batch, np.int32),
            "seed": np.asarray(seeds if seeds is not None else list(range(batch)), np.int64)}


def _outputs(response):
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


# --- export -------------------------------------------------------------------------------------

def test_export_signatures_and_metadata(exported):
    path, meta = exported
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"generate", "generate_with_velocity", "classify_generated",
                                      "metadata", "serving_default"}
    assert meta["class_names"] == CLASS_NAMES and meta["preset"] == "test"
    # The API is at the clips' 64 x 64 whatever frame size the preset's networks use.
    assert meta["frame_size"] == features.FRAME_SIZE == 64
    assert meta["model_frame_size"] == meta["config"]["frame_size"]
    assert export.read_metadata(path) == meta
    # TF Serving's warmup file: one generate request.
    from tensorflow_serving.apis import prediction_log_pb2
    records = list(tf.data.TFRecordDataset(
        os.path.join(path, "assets.extra", "tf_serving_warmup_requests")))
    assert len(records) == 1
    log = prediction_log_pb2.PredictionLog.FromString(records[0].numpy())
    assert set(log.predict_log.request.inputs) == {"appearance", "motion_class", "seed"}
    # The client follows the metadata: which family, which inputs each signature takes.
    assert meta["model"] == "amc-gan"
    # The evaluation signature returns the metric suite's per-clip outputs.
    assert set(meta["evaluation_outputs"]) == {
        "probabilities", "predicted_class", "real_probabilities", "generated_features",
        "real_features", "ssim", "psnr"}
    assert meta["signature_inputs"] == {
        "generate": ["appearance", "motion_class", "seed"],
        "generate_with_velocity": ["appearance", "motion_class", "velocity", "seed"]}
    # serving_default is generate: same inputs, same outputs.
    _, gen_inputs = loaded.signatures["generate"].structured_input_signature
    _, default_inputs = loaded.signatures["serving_default"].structured_input_signature
    assert gen_inputs == default_inputs


def test_class_without_velocities_samples_the_whole_bank():
    from amc_tf.inference import VelocityBank
    velocity = np.arange(5, dtype=np.float32).reshape(5, 1, 1) * np.ones([5, 1, 2], np.float32)
    bank = VelocityBank(velocity, np.array([2, 0, 2, 0, 2]), 3)
    np.testing.assert_array_equal(bank.offsets.numpy(), [0, 0, 2])
    np.testing.assert_array_equal(bank.counts.numpy(), [2, 5, 3])
    assert bank.classes_without_velocities == [1] and bank.per_class == [2, 0, 3]
    seeds = tf.range(64, dtype=tf.int64)
    drawn = bank.sample(tf.fill([64], 0), seeds).numpy()[:, 0, 0]
    assert set(drawn) == {1.0, 3.0}                  # only class 0's rows
    assert len(set(bank.sample(tf.fill([64], 1), seeds).numpy()[:, 0, 0])) > 2   # whole bank


@pytest.mark.parametrize("velocity, classes, message", [
    (np.zeros([0, 7, 18], np.float32), np.zeros([0], np.int32), "velocity bank is empty"),
    (np.zeros([4, 31, 18], np.float32), np.full([4], 3, np.int32),
     "velocity bank classes must be in"),
    (np.full([4, 31, 18], np.nan, np.float32), np.zeros([4], np.int32), "non-finite"),
])
def test_velocity_bank_rejects_bad_rows(velocity, classes, message):
    from amc_tf.inference import VelocityBank
    with pytest.raises(ValueError, match=message):
        VelocityBank(velocity, classes, len(CLASS_NAMES))


@pytest.mark.parametrize("rows, names, message", [
    ((4, 7, 10), CLASS_NAMES, "velocity bank rows"),
    (None, CLASS_NAMES, "draws velocities: give the velocity bank"),
    ((4, 7, 18), CLASS_NAMES[:2], "2 class names for a config with 3 classes"),
])
def test_export_rejects_bad_inputs(rows, names, message, tmp_path):
    from amc_tf.inference import VelocityBank
    from amc_tf.models import get_family
    family = get_family("amc-gan")
    config = family.config("test", num_classes=len(CLASS_NAMES), num_keypoints=NUM_KEYPOINTS)
    bank = None if rows is None else VelocityBank(np.zeros(rows, np.float32),
                                                  np.zeros([rows[0]], np.int32), 3)
    with pytest.raises(ValueError, match=message):
        export.export_serving_model(family, None, None, config, names, str(tmp_path / "m"),
                                    velocity_bank=bank)


def test_signature_rejects_bad_class_in_graph(exported):
    # What stock TF Serving (no server-side checks of ours) answers with: INVALID_ARGUMENT.
    path, meta = exported
    fn = tf.saved_model.load(path).signatures["generate"]
    inputs = _generate_inputs(meta, classes=[len(CLASS_NAMES)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="motion_class must be in"):
        fn(**{k: tf.constant(v) for k, v in inputs.items()})


# --- Predict ------------------------------------------------------------------------------------

def test_generate_shapes_and_dtypes(stub, exported):
    meta = exported[1]
    T, S, k = meta["num_frames"], meta["frame_size"], meta["num_keypoints"]
    inputs = _generate_inputs(meta, batch=2, classes=[0, 2])
    response = stub.Predict(_request(inputs), timeout=60)
    out = _outputs(response)
    assert out["video"].shape == (2, T, S, S, 3) and out["video"].dtype == np.uint8
    assert out["velocity"].shape == (2, T - 1, 2 * k) and out["velocity"].dtype == np.float32
    np.testing.assert_array_equal(out["video"][:, 0], inputs["appearance"])
    assert response.model_spec.name == "amc_gan" and response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "generate"


def test_same_seed_same_video_and_seed_changes_it(stub, exported):
    meta = exported[1]
    a = _outputs(stub.Predict(_request(_generate_inputs(meta, seeds=[7])), timeout=60))
    b = _outputs(stub.Predict(_request(_generate_inputs(meta, seeds=[7])), timeout=60))
    c = _outputs(stub.Predict(_request(_generate_inputs(meta, seeds=[8])), timeout=60))
    np.testing.assert_array_equal(a["video"], b["video"])
    np.testing.assert_array_equal(a["velocity"], b["velocity"])
    assert not np.array_equal(a["video"], c["video"])


def test_velocity_comes_from_the_class_bank(stub, exported):
    meta = exported[1]
    bank = tf.saved_model.load(exported[0])
    # The bank is stored sorted by class; each class holds 4 rows here.
    rows = bank.velocity_bank.velocity.numpy()
    for cls in range(len(CLASS_NAMES)):
        out = _outputs(stub.Predict(_request(_generate_inputs(meta, classes=[cls], seeds=[3])),
                                    timeout=60))
        assert any(np.array_equal(out["velocity"][0], r) for r in rows[4 * cls:4 * cls + 4])


def test_classes_give_different_videos(stub, exported):
    meta = exported[1]
    videos = [_outputs(stub.Predict(_request(_generate_inputs(meta, classes=[c], seeds=[5])),
                                    timeout=60))["video"][0] for c in range(len(CLASS_NAMES))]
    for i in range(len(videos)):
        for j in range(i + 1, len(videos)):
            assert not np.array_equal(videos[i][1:], videos[j][1:]), (i, j)


def test_generate_with_velocity_reproduces_generate(stub, exported):
    meta = exported[1]
    inputs = _generate_inputs(meta, classes=[1], seeds=[11])
    sampled = _outputs(stub.Predict(_request(inputs), timeout=60))
    given = dict(inputs, velocity=sampled["velocity"])
    out = _outputs(stub.Predict(_request(given, "generate_with_velocity"), timeout=60))
    np.testing.assert_array_equal(out["velocity"], sampled["velocity"])
    np.testing.assert_array_equal(out["video"], sampled["video"])


def _clip_examples(classes, seed=1):
    """Serialized preprocessed clips (features.py contract) of the given classes."""
    rng = np.random.default_rng(seed)
    k = NUM_KEYPOINTS
    examples = []
    for cls in classes:
        video = rng.integers(0, 256, (features.NUM_FRAMES, 64, 64, 3), dtype=np.uint8)
        feature = {
            features.VIDEO: tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[video.tobytes()])),
            features.KEYPOINTS: tf.train.Feature(float_list=tf.train.FloatList(
                value=rng.uniform(0, 64, features.NUM_FRAMES * 2 * k))),
            features.VELOCITY: tf.train.Feature(float_list=tf.train.FloatList(
                value=rng.uniform(-1, 1, (features.NUM_FRAMES - 1) * 2 * k))),
            features.MOTION_CLASS: tf.train.Feature(int64_list=tf.train.Int64List(value=[cls])),
            features.SUBJECT: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"s"])),
            features.CLIP_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"c"])),
        }
        examples.append(tf.train.Example(features=tf.train.Features(
            feature=feature)).SerializeToString())
    return examples


def test_classify_generated_over_grpc(stub, exported):
    examples = _clip_examples([0, 2])
    request = _request({"examples": np.array(examples, dtype=object)}, "classify_generated")
    out = _outputs(stub.Predict(request, timeout=60))
    assert out["probabilities"].shape == (2, len(CLASS_NAMES))
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    assert out["predicted_class"].dtype == np.int64
    np.testing.assert_array_equal(out["predicted_class"], out["probabilities"].argmax(axis=1))


def test_tfma_evaluates_classify_generated(exported, tmp_path):
    # The pipeline's Evaluator: TFMA feeds serialized clips to `classify_generated`.
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.proto import config_pb2

    data = str(tmp_path / "clips.tfrecord")
    with tf.io.TFRecordWriter(data) as writer:
        for example in _clip_examples([0, 1, 2, 1]):
            writer.write(example)
    eval_config = config_pb2.EvalConfig(
        model_specs=[config_pb2.ModelSpec(signature_name="classify_generated",
                                          label_key="motion_class",
                                          prediction_key="probabilities")],
        slicing_specs=[config_pb2.SlicingSpec()],
        metrics_specs=[config_pb2.MetricsSpec(metrics=[
            config_pb2.MetricConfig(class_name="SparseCategoricalAccuracy"),
            config_pb2.MetricConfig(class_name="ExampleCount")])])
    result = tfma.run_model_analysis(
        eval_shared_model=tfma.default_eval_shared_model(exported[0], eval_config=eval_config),
        eval_config=eval_config, data_location=data, output_path=str(tmp_path / "out"))
    (slice_key, metrics), = result.slicing_metrics
    values = metrics[""][""]
    assert values["example_count"]["doubleValue"] == 4
    assert 0.0 <= values["sparse_categorical_accuracy"]["doubleValue"] <= 1.0


def test_metadata_signature_for_stock_tf_serving(stub):
    # Stock TF Serving's GetModelMetadata has only signature_def: the metadata signature serves
    # the same JSON through Predict (no inputs).
    out = _outputs(stub.Predict(_request({}, "metadata"), timeout=30))
    assert [n.decode() for n in out["class_names"]] == CLASS_NAMES
    assert json.loads(out["metadata_json"].item())["num_keypoints"] == NUM_KEYPOINTS
    assert out["preset"].item() == b"test"


# --- bad requests -------------------------------------------------------------------------------

def _bad_cases(meta):
    S, T, k = meta["frame_size"], meta["num_frames"], meta["num_keypoints"]
    good = _generate_inputs(meta)
    nan_velocity = np.zeros([1, T - 1, 2 * k], np.float32)
    nan_velocity[0, 2, 1] = np.nan
    inf_velocity = np.full([1, T - 1, 2 * k], np.inf, np.float32)
    # A TensorProto whose one value is broadcast over a huge shape, and one with too few bytes.
    bomb = _request(good)
    bomb.inputs["appearance"].CopyFrom(tf.make_tensor_proto(0, tf.uint8, [10 ** 6, S, S, 3]))
    short = _request(good)
    short.inputs["appearance"].tensor_content = short.inputs["appearance"].tensor_content[:-5]
    return {
        "broadcast bomb": (bomb, grpc.StatusCode.INVALID_ARGUMENT, "\"appearance\" of shape"),
        "truncated tensor": (short, grpc.StatusCode.INVALID_ARGUMENT,
                             "\"appearance\" is a malformed TensorProto"),
        "missing input": (_request({"appearance": good["appearance"],
                                    "seed": good["seed"]}),
                          grpc.StatusCode.INVALID_ARGUMENT, "Missing but required: {motion_class}"),
        "extra input": (_request(dict(good, noise=np.zeros([1, 4], np.float32))),
                        grpc.StatusCode.INVALID_ARGUMENT, "Sent extra: {noise}"),
        "renamed input": (_request({"appearance": good["appearance"], "class": good["motion_class"],
                                    "seed": good["seed"]}),
                          grpc.StatusCode.INVALID_ARGUMENT, "alias not found in signature: class"),
        "wrong dtype": (_request(dict(good, motion_class=np.array([0], np.int64))),
                        grpc.StatusCode.INVALID_ARGUMENT, "\"motion_class\" has dtype int64"),
        "float appearance": (_request(dict(good, appearance=np.zeros([1, S, S, 3], np.float32))),
                             grpc.StatusCode.INVALID_ARGUMENT, "\"appearance\" has dtype float"),
        "wrong image size": (_request(dict(good, appearance=np.zeros([1, S + 1, S, 3], np.uint8))),
                             grpc.StatusCode.INVALID_ARGUMENT,
                             f"\"appearance\" has shape [1,{S + 1},{S},3]"),
        "wrong rank": (_request(dict(good, seed=np.array([[1]], np.int64))),
                       grpc.StatusCode.INVALID_ARGUMENT, "\"seed\" has shape [1,1]"),
        "batch mismatch": (_request(dict(good, seed=np.array([1, 2], np.int64))),
                           grpc.StatusCode.INVALID_ARGUMENT, "different batch sizes"),
        # Value checks are the exported graph's asserts: their message, not the node trace.
        "class too big": (_request(dict(good, motion_class=np.array([3], np.int32))),
                          grpc.StatusCode.INVALID_ARGUMENT, "motion_class must be in [0, 3)"),
        "negative class": (_request(dict(good, motion_class=np.array([-1], np.int32))),
                           grpc.StatusCode.INVALID_ARGUMENT, "motion_class must be in [0, 3)"),
        "nan velocity": (_request(dict(good, velocity=nan_velocity), "generate_with_velocity"),
                         grpc.StatusCode.INVALID_ARGUMENT, "velocity holds NaN or Inf"),
        "inf velocity": (_request(dict(good, velocity=inf_velocity), "generate_with_velocity"),
                         grpc.StatusCode.INVALID_ARGUMENT, "velocity holds NaN or Inf"),
        "wrong velocity steps": (
            _request(dict(good, velocity=np.zeros([1, T, 2 * k], np.float32)),
                     "generate_with_velocity"),
            grpc.StatusCode.INVALID_ARGUMENT, "\"velocity\" has shape"),
        "empty batch": (_request(_generate_inputs(meta, batch=0)),
                        grpc.StatusCode.INVALID_ARGUMENT, "batch size is 0"),
        "batch over limit": (_request(_generate_inputs(meta, batch=MAX_BATCH + 1)),
                             grpc.StatusCode.INVALID_ARGUMENT,
                             f"batch size {MAX_BATCH + 1} is larger than the maximum"),
        "unknown model": (_request(good, model_name="other"),
                          grpc.StatusCode.NOT_FOUND,
                          "Servable not found for request: Latest(other)"),
        "unknown version": (_request(good, version=99), grpc.StatusCode.NOT_FOUND,
                            "Specific(amc_gan, 99)"),
        # TF Serving's own code for an unknown signature key (predict_util.cc).
        "unknown signature": (_request(good, signature="generate_faster"),
                              grpc.StatusCode.FAILED_PRECONDITION,
                              "Serving signature key \"generate_faster\" not found"),
        "oversize message": (_request(dict(good, appearance=np.zeros(
                                 [1, 1024, 1024, 3], np.uint8))),
                             grpc.StatusCode.RESOURCE_EXHAUSTED, "larger than max"),
    }


BAD_CASES = list(_bad_cases({"frame_size": 8, "num_frames": 4, "num_keypoints": 1}))


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_request_is_rejected_and_server_keeps_serving(stub, exported, case):
    meta = exported[1]
    request, code, message = _bad_cases(meta)[case]
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=60)
    assert info.value.code() == code, info.value.details()
    assert message in info.value.details()
    assert "Detected at node" not in info.value.details()
    out = _outputs(stub.Predict(_request(_generate_inputs(meta)), timeout=60))
    assert out["video"].shape[0] == 1


def test_version_label_is_not_found(stub, exported):
    request = _request(_generate_inputs(exported[1]))
    request.model_spec.version_label = "stable"
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=60)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "stable" in info.value.details()


def test_output_filter(stub, exported):
    request = _request(_generate_inputs(exported[1]))
    request.output_filter.append("velocity")
    assert set(stub.Predict(request, timeout=60).outputs) == {"velocity"}
    request.output_filter.append("audio")
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "audio" in info.value.details()


# --- metadata and status ------------------------------------------------------------------------

def test_get_model_metadata(stub, exported):
    meta = exported[1]
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "amc_gan"
    request.metadata_field.extend(["signature_def", "amc_metadata"])
    response = stub.GetModelMetadata(request, timeout=30)
    assert response.model_spec.version.value == 1
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    defs = signature_map.signature_def
    assert {"generate", "generate_with_velocity", "classify_generated",
            "serving_default"} <= set(defs)
    gen = defs["generate"]
    assert set(gen.inputs) == {"appearance", "motion_class", "seed"}
    assert set(gen.outputs) == {"video", "velocity"}
    assert gen.inputs["appearance"].dtype == tf.uint8.as_datatype_enum
    assert [d.size for d in gen.inputs["appearance"].tensor_shape.dim] == \
        [-1, meta["frame_size"], meta["frame_size"], 3]
    assert gen.inputs["motion_class"].dtype == tf.int32.as_datatype_enum
    assert gen.inputs["seed"].dtype == tf.int64.as_datatype_enum
    assert defs["classify_generated"].inputs["examples"].dtype == tf.string.as_datatype_enum
    value = wrappers_pb2.StringValue()
    assert response.metadata["amc_metadata"].Unpack(value)
    amc = json.loads(value.value)
    assert amc["class_names"] == CLASS_NAMES
    assert (amc["num_frames"], amc["num_keypoints"], amc["preset"]) == \
        (meta["num_frames"], NUM_KEYPOINTS, "test")


def test_get_model_metadata_errors(stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "amc_gan"
    with pytest.raises(grpc.RpcError) as info:
        stub.GetModelMetadata(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    request.metadata_field.append("signature_def")
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as info:
        stub.GetModelMetadata(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_get_model_status(address):
    with grpc.insecure_channel(address) as channel:
        model_stub = model_service_pb2_grpc.ModelServiceStub(channel)
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "amc_gan"
        response = model_stub.GetModelStatus(request, timeout=30)
        assert [(s.version, s.state) for s in response.model_version_status] == \
            [(1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
        assert response.model_version_status[0].status.error_code == 0
        request.model_spec.name = "nope"
        with pytest.raises(grpc.RpcError) as info:
            model_stub.GetModelStatus(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        # A version label: NOT_FOUND, as Predict answers it (issue 35: it read AVAILABLE).
        request.model_spec.name = "amc_gan"
        request.model_spec.version_label = "stable"
        with pytest.raises(grpc.RpcError) as info:
            model_stub.GetModelStatus(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert "version label" in info.value.details()


# --- client and CLI -----------------------------------------------------------------------------

def test_client_generate_video_by_name_and_id(address, exported, tmp_path):
    from PIL import Image
    meta = exported[1]
    png = tmp_path / "face.png"
    Image.fromarray(_appearance(96)[0]).save(png)
    by_name, velocity = client.generate_video(address, str(png), "wave_one_arm", seed=4)
    by_id, _ = client.generate_video(address, str(png), 2, seed=4)
    np.testing.assert_array_equal(by_name, by_id)
    assert by_name.shape == (meta["num_frames"], meta["frame_size"], meta["frame_size"], 3)
    assert velocity.shape == (meta["num_frames"] - 1, 2 * NUM_KEYPOINTS)
    with pytest.raises(ValueError, match="unknown motion class"):
        client.generate_video(address, str(png), "moonwalk", seed=4)
    assert client.get_metadata(address)["class_names"] == CLASS_NAMES


def test_amc_tf_generate_cli(address, tmp_path):
    from PIL import Image

    from amc_app import cli
    png = tmp_path / "face.png"
    Image.fromarray(_appearance(64)[0]).save(png)
    out = tmp_path / "out" / "wave.gif"
    sheet = tmp_path / "sheet.png"
    assert cli.main(["generate", "--server", address, "--image", str(png), "--motion",
                     "raise_one_arm", "--seed", "2", "--out", str(out),
                     "--contact-sheet", str(sheet)]) == 0
    num_frames = client.get_metadata(address)["num_frames"]
    # Pillow may merge identical consecutive frames, so at most T frames.
    assert 1 < Image.open(out).n_frames <= num_frames
    # OpenCV's mp4v writer ships with opencv-python-headless.
    import cv2
    capture = cv2.VideoCapture(str(out.with_suffix(".mp4")))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == num_frames
    assert Image.open(sheet).size[0] > Image.open(sheet).size[1]


def _eval_data(tmp_path, dataset="gestures", class_names=CLASS_NAMES):
    import fixtures
    data = tmp_path / "data"
    fixtures.write_clips(str(data), 7, len(CLASS_NAMES), NUM_KEYPOINTS, seed=2, split="eval")
    with open(data / "summary.json", "w") as f:
        json.dump({"dataset": dataset, "class_names": list(class_names)}, f)
    return str(data)


def _export_feature_extractor(path, features=6, frames=None, dtype=tf.float32):
    """A user's video feature extractor: per-frame mean colour, then its temporal mean and
    spread (6 features); float32 (B, T, 64, 64, 3) in [0, 1] -> (B, 6). Other `features`: the
    6 tiled to that width; `frames`: the input declares that many frames; `dtype`: its type."""
    class Extractor(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, frames, 64, 64, 3], dtype,
                                                    name="video")])
        def __call__(self, video):
            colour = tf.reduce_mean(tf.cast(video, tf.float32), axis=[2, 3])
            six = tf.concat([tf.reduce_mean(colour, 1), tf.math.reduce_std(colour, 1)], -1)
            return {"features": tf.tile(six, [1, -(-features // 6)])[:, :features]}
    module = Extractor()
    tf.saved_model.save(module, path, signatures={"serving_default": module.__call__})


def test_amc_tf_evaluate_saved_model_and_server_agree(exported, address, tmp_path):
    """`amc-tf evaluate`: the suite of a SavedModel in process equals the suite of the same
    model through the server's TF Serving API; SSIM / PSNR are there (AMC-GAN has y_a), the
    keypoint metrics say n/a (this export has no keypoint judge)."""
    from amc_tf.metrics import suite
    from serving import evaluate
    data = _eval_data(tmp_path)
    local = evaluate.evaluate(data, saved_model_dir=exported[0], batch_size=3)
    remote = evaluate.evaluate(data, server=address, batch_size=3)
    assert local["clips"] == remote["clips"] == 7
    for metric in (suite.ACCURACY, suite.REAL_ACCURACY, suite.SSIM_METRIC, suite.PSNR_METRIC,
                   suite.CLASSIFIER_FID, suite.INCEPTION_SCORE):
        assert local["table"]["overall"][metric] == pytest.approx(
            remote["table"]["overall"][metric], rel=1e-4), metric
    assert 0.0 < local["table"]["overall"][suite.SSIM_METRIC] <= 1.0
    assert suite.KEYPOINT_ACCURACY in local["not_applicable"]
    assert set(local["table"]) >= {"overall"}
    assert set(local["table"]) - {"overall"} <= set(CLASS_NAMES)
    text = evaluate.format_report(local)
    assert re.search(r"keypoint_accuracy\s+n/a", text)


@pytest.mark.parametrize("dataset, class_names, message", [
    ("faces", CLASS_NAMES, "holds faces clips \\(11 keypoints\\) but the model takes 9"),
    ("gestures", ["wave_one_arm", "raise_one_arm", "raise_both_arms"], "class ids would mean"),
])
def test_amc_tf_evaluate_rejects_data_of_another_kind(exported, tmp_path, dataset, class_names,
                                                      message):
    from serving import evaluate
    data = _eval_data(tmp_path, dataset, class_names)
    with pytest.raises(ValueError, match=message):
        evaluate.evaluate(data, saved_model_dir=exported[0])


def test_amc_tf_evaluate_cli_with_a_feature_extractor(exported, tmp_path, capsys):
    from amc_app import cli
    data = _eval_data(tmp_path)
    extractor = str(tmp_path / "extractor")
    _export_feature_extractor(extractor)
    out = tmp_path / "report.json"
    assert cli.main(["evaluate", "--saved-model", exported[0], "--data", data,
                     "--feature-extractor", extractor, "--batch-size", "4",
                     "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    overall = report["table"]["overall"]
    assert overall["feature_fid"] >= 0.0 and np.isfinite(overall["feature_fid"])
    assert overall["classifier_fid"] >= 0.0
    assert cli.main(["evaluate", "--saved-model", exported[0], "--data", data,
                     "--feature-extractor", extractor, "--feature-key", "nope"]) == 1
    assert "amc-tf evaluate: error: ValueError: feature extractor" in capsys.readouterr().err
    # A feature extractor that cannot fit is refused before any video is generated (issue 35:
    # 60,000 features asked for 26.8 GiB of covariance; one declaring 16 frames was fed 8).
    from serving import evaluate
    for wide, frames, dtype, message in (
            (60000, None, tf.float32, "60000 features"),
            (6, 16, tf.float32, "takes 16 frames; the model's videos have 8"),
            (6, None, tf.uint8, "takes uint8 input; videos are fed as float32")):
        odd = str(tmp_path / f"extractor_{wide}_{frames}_{dtype.name}")
        _export_feature_extractor(odd, features=wide, frames=frames, dtype=dtype)
        with pytest.raises(ValueError, match=message):
            evaluate.evaluate(data, saved_model_dir=exported[0], feature_extractor=odd)


def test_serving_cli_does_not_import_tensorflow():
    code = ("import sys, serving.cli; "
            "assert 'tensorflow' not in sys.modules, 'serving.cli imported tensorflow'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


# --- amc-tf serve as a process -----------------------------------------------------------------

def _read_banner(proc, timeout_s=120):
    """The 'serving ... gRPC host:port' line `amc-tf serve` prints once it listens."""
    deadline = time.time() + timeout_s
    lines = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line)
        match = re.search(r"gRPC (\S+):(\d+), REST \S+:(\d+)", line)
        if match:
            return match[1], int(match[2]), int(match[3])
    proc.kill()
    pytest.fail("amc-tf serve did not come up:\n" + "".join(lines[-30:]))


def test_amc_tf_serve_process(exported, tmp_path):
    base = tmp_path / "serving_model" / "amc_gan"
    shutil.copytree(exported[0], base / "3")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "amc_app.cli", "serve", "--model-base-path", str(base),
         "--port", "0", "--rest-port", "0", "--grace", "2"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        host, port, rest_port = _read_banner(proc)
        assert host == "127.0.0.1" and port > 0 and rest_port > 0
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = model_service_pb2_grpc.ModelServiceStub(channel)
            request = get_model_status_pb2.GetModelStatusRequest()
            request.model_spec.name = "amc_gan"
            response = stub.GetModelStatus(request, timeout=30)
        assert [(s.version, s.state) for s in response.model_version_status] == \
            [(3, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- REST ---------------------------------------------------------------------------------------

def _rest(port, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_rest_predict_matches_grpc(model_server, stub, exported):
    meta = exported[1]
    inputs = _generate_inputs(meta, classes=[1], seeds=[9])
    grpc_video = _outputs(stub.Predict(_request(inputs), timeout=60))["video"]
    instance = {"appearance": inputs["appearance"][0].tolist(), "motion_class": 1, "seed": 9}
    status, body = _rest(model_server.rest_port, "/v1/models/amc_gan:predict",
                         {"signature_name": "generate", "instances": [instance]})
    assert status == 200, body
    np.testing.assert_array_equal(np.array(body["predictions"][0]["video"], np.uint8),
                                  grpc_video[0])
    status, body = _rest(model_server.rest_port, "/v1/models/amc_gan/versions/1:predict",
                         {"inputs": {k: v.tolist() for k, v in inputs.items()}})
    assert status == 200 and np.array(body["outputs"]["video"]).shape == grpc_video.shape


def test_rest_errors_and_status(model_server, exported):
    meta = exported[1]
    instance = {"appearance": _appearance(meta["frame_size"])[0].tolist(), "motion_class": 7,
                "seed": 1}
    status, body = _rest(model_server.rest_port, "/v1/models/amc_gan:predict",
                         {"instances": [instance]})
    assert status == 400 and "motion_class" in body["error"]
    status, body = _rest(model_server.rest_port, "/v1/models/nope:predict",
                         {"instances": [dict(instance, motion_class=0)]})
    assert status == 404 and "nope" in body["error"]
    status, body = _rest(model_server.rest_port, "/v1/models/amc_gan")
    assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
    status, body = _rest(model_server.rest_port, "/v1/models/amc_gan:predict",
                         {"signature_name": "metadata", "inputs": {}})
    assert status == 200 and body["outputs"]["class_names"] == CLASS_NAMES
    status, body = _rest(model_server.rest_port, "/v1/models/amc_gan/metadata")
    assert status == 200 and "generate" in body["metadata"]["signature_def"]["signature_def"]


# --- hot swap -----------------------------------------------------------------------------------

def test_hot_swap_under_concurrent_requests(exported, tmp_path):
    meta = exported[1]
    base = tmp_path / "amc_gan"
    shutil.copytree(exported[0], base / "1")
    srv = server.start(str(base), port=0, poll_interval_s=0.2)
    failures, versions, lock = [], [], threading.Lock()
    stop = threading.Event()
    swapped_at = []

    def worker(i):
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            # Bounded in time even if the swap never happens.
            deadline, n = time.time() + 90, 0
            while not stop.is_set() and time.time() < deadline:
                n += 1
                try:
                    response = stub.Predict(_request(_generate_inputs(meta, seeds=[i * 1000 + n])),
                                            timeout=60)
                    with lock:
                        versions.append(response.model_spec.version.value)
                except grpc.RpcError as e:
                    with lock:
                        failures.append(f"{e.code()}: {e.details()}")

    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        # Push like a Pusher would, but atomically: copy aside, then rename into place.
        shutil.copytree(exported[0], tmp_path / "incoming")
        os.rename(tmp_path / "incoming", base / "2")
        server.wait_for_version(srv, 2, timeout_s=60)
        swapped_at.append(len(versions))
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        assert not failures, failures[:5]
        assert 1 in versions and 2 in versions
        # Once version 2 is served, no request goes to version 1 again.
        after = versions[swapped_at[0] + 8:]
        assert after and set(after) == {2}
        status = {v: state for v, state, _, _ in srv.manager.status("amc_gan")}
        assert status == {2: "AVAILABLE", 1: "END"}
        # The old version is no longer reachable by number.
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(_request(_generate_inputs(meta), version=1), timeout=60)
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        stop.set()
        srv.stop(grace=2)


def test_in_flight_request_keeps_old_version_until_done(exported, tmp_path):
    base = tmp_path / "amc_gan"
    shutil.copytree(exported[0], base / "1")
    srv = server.start(str(base), port=0, poll_interval_s=60)
    try:
        with srv.manager.acquire("amc_gan") as held:
            shutil.copytree(exported[0], base / "2")
            # The first poll sees version 2 appear, the next one finds it unchanged and swaps.
            assert not srv.manager.poll()
            assert srv.manager.poll()
            assert held.state == "UNLOADING" and held.signatures
            out = held.signatures["generate"].fn(
                **{k: tf.constant(v) for k, v in _generate_inputs(exported[1]).items()})
            assert out["video"].shape[0] == 1
        assert held.state == "END" and not held.signatures
    finally:
        srv.stop(grace=1)


def test_version_being_copied_is_not_served_until_complete(exported, tmp_path):
    # A Pusher copies file by file: a half-written variables file must not be loaded, and the
    # version must be loaded once the copy is done.
    meta = exported[1]
    base = tmp_path / "amc_gan"
    shutil.copytree(exported[0], base / "1")
    srv = server.start(str(base), port=0, poll_interval_s=0.1)
    try:
        address = f"127.0.0.1:{srv.port}"
        shutil.copytree(exported[0], base / "2")
        data = next((base / "2" / "variables").glob("variables.data-*"))
        full = data.read_bytes()
        data.write_bytes(full[:len(full) // 2])
        # ~10 polls: every load of the corrupt version fails, then it is reported as failed.
        deadline = time.time() + 30
        while len(srv.manager.status("amc_gan")) < 2 and time.time() < deadline:
            time.sleep(0.1)
        with grpc.insecure_channel(address) as channel:
            request = get_model_status_pb2.GetModelStatusRequest()
            request.model_spec.name = "amc_gan"
            response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
                request, timeout=30)
        failed, serving = response.model_version_status
        assert (failed.version, failed.state) == (2, get_model_status_pb2.ModelVersionStatus.END)
        assert failed.status.error_code != 0 and failed.status.error_message
        assert (serving.version, serving.state, serving.status.error_code) == \
            (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0)
        out = client.predict(address, _generate_inputs(meta))
        assert out["video"].shape[0] == 1
        # The Pusher finishes the copy: the version is loaded after all.
        data.write_bytes(full)
        server.wait_for_version(srv, 2, timeout_s=60)
        assert {v: s for v, s, _, _ in srv.manager.status("amc_gan")} == \
            {2: "AVAILABLE", 1: "END"}
    finally:
        srv.stop(grace=1)


def test_stop_is_graceful_and_idempotent(exported, tmp_path):
    base = tmp_path / "amc_gan"
    shutil.copytree(exported[0], base / "1")
    srv = server.start(str(base), port=0)
    address = f"127.0.0.1:{srv.port}"
    assert client.get_metadata(address)["class_names"] == CLASS_NAMES
    srv.stop(grace=1)
    srv.stop(grace=1)
    with pytest.raises(grpc.RpcError) as info:
        client.get_metadata(address, timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


# --- versions: readiness and warm-up -----------------------------------------------------------

SERVER_MODULES = ("server", "versions", "predictor", "codec", "grpc_service", "rest", "errors")


def test_server_knows_models_only_through_their_signatures():
    # Requests are checked against the signatures and by the export's own asserts, and warm-up
    # replays the export's requests: nothing in the server names a model input.
    for module in SERVER_MODULES:
        with open(os.path.join(REPO, "serving", f"{module}.py")) as f:
            source = f.read()
        for name in ("appearance", "motion_class", "velocity", "seed"):
            assert not re.search(rf"\b{name}\b", source), f"serving/{module}.py names {name}"


def _write_warmup_requests(version_dir, requests):
    from tensorflow_serving.apis import prediction_log_pb2
    with tf.io.TFRecordWriter(os.path.join(version_dir, export.WARMUP_FILE)) as writer:
        for request in requests:
            writer.write(prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)).SerializeToString())


def test_warm_up_replays_the_exports_requests(exported, tmp_path, monkeypatch):
    from serving import predictor, versions
    replayed = []
    run = predictor.run
    monkeypatch.setattr(predictor, "run", lambda model, signature_name, *args: (
        replayed.append((model.version, signature_name)), run(model, signature_name, *args))[1])
    base = tmp_path / "amc_gan"
    shutil.copytree(exported[0], base / "1")
    manager = versions.ModelManager(str(base), "amc_gan")
    assert manager.poll()
    assert replayed == [(1, "generate")]                 # the export's one warm-up request
    # A version without the file is served without warm-up.
    shutil.copytree(exported[0], base / "2")
    os.remove(base / "2" / export.WARMUP_FILE)
    assert not manager.poll() and manager.poll()         # seen, then unchanged: swapped in
    assert manager.serving_version() == 2 and replayed == [(1, "generate")]


@pytest.mark.parametrize("signature, classes, code, message", [
    ("generate_faster", [0], grpc.StatusCode.FAILED_PRECONDITION,
     "Serving signature key \"generate_faster\" not found"),
    ("generate", [len(CLASS_NAMES)], grpc.StatusCode.INVALID_ARGUMENT,
     "motion_class must be in [0, 3)"),
])
def test_version_whose_warm_up_fails_is_not_served(exported, tmp_path, monkeypatch, signature,
                                                   classes, code, message):
    from serving import versions
    # One failed load is enough to report the version (the retries are for copies in progress).
    monkeypatch.setattr(versions, "_LOAD_RETRIES", 1)
    base = tmp_path / "amc_gan"
    shutil.copytree(exported[0], base / "1")
    manager = versions.ModelManager(str(base), "amc_gan")
    assert manager.poll()
    shutil.copytree(exported[0], base / "2")
    _write_warmup_requests(base / "2", [_request(_generate_inputs(exported[1])),
                                        _request(_generate_inputs(exported[1], classes=classes),
                                                 signature)])
    assert not manager.poll() and not manager.poll()
    (v2, state, error_code, error), (v1, served, _, _) = manager.status("amc_gan")
    assert (v2, state, error_code) == (2, "END", code.value[0])
    assert error.startswith("warm-up record 2 of assets.extra/tf_serving_warmup_requests")
    assert message in error
    assert (v1, served) == (1, "AVAILABLE") and manager.serving_version() == 1


def test_version_is_ready_once_its_saved_model_pb_loads(exported, tmp_path):
    from serving import errors, versions
    base = tmp_path / "amc_gan"
    shutil.copytree(exported[0], base / "1", ignore=shutil.ignore_patterns("saved_model.pb"))
    manager = versions.ModelManager(str(base), "amc_gan")
    # TFX's Pusher copies saved_model.pb last: without it the version is not even tried.
    assert not manager.poll()
    with pytest.raises(errors.ServingError) as info:
        manager.status("amc_gan")
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    # A truncated saved_model.pb does not load: retried, then reported, never served.
    full = (tmp_path / "full.pb")
    shutil.copy(os.path.join(exported[0], "saved_model.pb"), full)
    (base / "1" / "saved_model.pb").write_bytes(full.read_bytes()[:full.stat().st_size // 2])
    for _ in range(versions._LOAD_RETRIES + 1):
        assert not manager.poll()
    [(version, state, error_code, error)] = manager.status("amc_gan")
    assert (version, state) == (1, "END") and error_code != 0 and error
    with pytest.raises(errors.ServingError) as info:
        with manager.acquire("amc_gan"):
            pass
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    # The copy completes: the version loads and is served.
    shutil.copy(full, base / "1" / "saved_model.pb")
    assert manager.poll() and manager.status("amc_gan") == [(1, "AVAILABLE", 0, "")]


def test_saved_model_without_the_exports_metadata_is_served(exported, tmp_path):
    from serving import codec, errors, predictor, versions
    base = tmp_path / "amc_gan"
    shutil.copytree(exported[0], base / "1")
    os.remove(base / "1" / "assets" / export.METADATA_FILE)
    manager = versions.ModelManager(str(base), "amc_gan")
    assert manager.poll()
    inputs = _generate_inputs(exported[1], batch=MAX_BATCH + 1)
    with manager.acquire("amc_gan") as model:
        assert model.metadata is None and model.max_batch_size is None
        decoders = {k: codec.proto_decoder(tf.make_tensor_proto(v), 1 << 30)
                    for k, v in inputs.items()}
        with pytest.raises(errors.ServingError) as info:
            predictor.run(model, "generate", decoders)
    # No batch limit from the metadata: the graph's own assert answers.
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "batch size is above the limit" in info.value.message
