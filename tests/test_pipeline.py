"""The TFX pipeline (AMC-GAN family): DAG shape, Vertex compile (offline). The full local runs
(the Python API, then `tfx pipeline create` / `tfx run create` against the blessed baseline) are
the AMC-GAN demo's, in tests/test_demo.py."""
import json
import os

import pytest

import fixtures
from pipeline import configs


@pytest.fixture(scope="module")
def tiny_raw(tmp_path_factory):
    """A tiny synthetic gestures set (every class, a few subjects) with its own class names."""
    return fixtures.write_natops_named_gestures(tmp_path_factory.mktemp("raw"), clips=24, seed=3,
                                                num_classes=4)


def test_create_pipeline_dag(tiny_raw, tmp_path):
    from pipeline import local_runner
    # The cpu preset's gates (the test preset reports without gating).
    pipeline = local_runner.local_pipeline(home=str(tmp_path), preset="cpu",
                                           raw_data_path=tiny_raw)
    ids = [c.id for c in pipeline.components]
    assert sorted(ids) == sorted([
        "VideoExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
        "classifier_trainer", "model_trainer", "latest_blessed_model_resolver", "Evaluator",
        "Pusher"])
    # Topological order: the workflow reads ExampleGen → ... → Trainers → Evaluator → Pusher.
    for before, after in [("VideoExampleGen", "StatisticsGen"), ("StatisticsGen", "ExampleValidator"),
                          ("classifier_trainer", "model_trainer"), ("model_trainer", "Evaluator"),
                          ("latest_blessed_model_resolver", "Evaluator"), ("Evaluator", "Pusher")]:
        assert ids.index(before) < ids.index(after), (before, after, ids)
    by_id = {c.id: c for c in pipeline.components}
    trainer = by_id["model_trainer"]
    assert trainer.exec_properties["run_fn"] == configs.MODEL_RUN_FN
    assert "base_model" in trainer.inputs
    # The class names reach the Trainers through ExampleGen's artifact, not the pipeline.
    assert json.loads(trainer.exec_properties["custom_config"]) == {"model": "amc-gan",
                                                                    "preset": "cpu"}
    evaluator = by_id["Evaluator"]
    eval_config = json.loads(evaluator.exec_properties["eval_config"])
    assert eval_config["model_specs"][0]["signature_name"] == "classify_generated"
    metrics = {m["class_name"]: m for m in eval_config["metrics_specs"][0]["metrics"]}
    from amc_tf.metrics.tfma_metrics import METRIC_CLASSES
    assert set(METRIC_CLASSES) <= set(metrics)     # the whole suite (AMC-GAN takes y_a)
    # The blessing gates are on the overall slice only; per-class slices are reported: the
    # generated/real accuracy ratio (value and change vs the baseline) and the judge itself.
    run = configs.RUN_SETTINGS["cpu"]
    [gate] = metrics["AccuracyRatio"]["per_slice_thresholds"]
    assert gate["slicing_specs"] == [{}]
    assert gate["threshold"]["value_threshold"]["lower_bound"] == run.eval_ratio_threshold
    assert gate["threshold"]["change_threshold"]["absolute"] == -run.eval_change_tolerance
    [judge] = metrics["RealAccuracy"]["per_slice_thresholds"]
    assert judge["threshold"]["value_threshold"]["lower_bound"] == \
        run.eval_real_accuracy_threshold
    assert all("threshold" not in m for m in metrics.values())
    assert all("per_slice_thresholds" not in m for name, m in metrics.items()
               if name not in ("AccuracyRatio", "RealAccuracy", "ExampleCount"))
    assert pipeline.metadata_connection_config.sqlite.filename_uri.startswith(str(tmp_path))


def test_augmentation_is_a_per_dataset_default(tiny_raw, tmp_path):
    """B.1 augments MUG, not NATOPS: the paper presets follow the dataset style; the small
    presets augment both; a run's own options win (kept available everywhere)."""
    assert configs.example_gen_config("paper-natops", "gestures") == configs.NO_AUGMENTATION
    assert configs.example_gen_config("paper-mug", "faces") == {"augment_copies": 4}
    assert configs.example_gen_config("paper-natops", "faces") == {"augment_copies": 4}
    assert configs.example_gen_config("cpu", "gestures") == {"augment_copies": 2}
    assert configs.example_gen_config("paper-natops", "gestures", augment_copies=3,
                                      flip_probability=None) == \
        dict(configs.NO_AUGMENTATION, augment_copies=3)
    from pipeline import local_runner
    def example_gen_of(**kwargs):
        pipeline = local_runner.local_pipeline(home=str(tmp_path), raw_data_path=tiny_raw,
                                               **kwargs)
        [gen] = [c for c in pipeline.components if c.id == "VideoExampleGen"]
        from amc_tf.data.example_gen import custom_config_to_dict
        config = custom_config_to_dict(gen.exec_properties["custom_config"])
        assert config.pop("dataset") == "gestures"
        return config
    assert example_gen_of(preset="paper-natops") == configs.NO_AUGMENTATION
    assert example_gen_of(preset="paper-natops", augmentation={"augment_copies": 2}) == \
        dict(configs.NO_AUGMENTATION, augment_copies=2)
    assert example_gen_of(preset="cpu") == {"augment_copies": 2}


def test_unknown_preset_and_missing_raw_are_clear(tmp_path):
    from pipeline import local_runner
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        local_runner.local_pipeline(home=str(tmp_path), preset="huge")
    with pytest.raises(FileNotFoundError, match="amc-tf synth"):
        local_runner.local_pipeline(home=str(tmp_path), preset="test",
                                    raw_data_path=str(tmp_path / "nope"))


VERTEX_ARGS = dict(project="amc-test-project", region="europe-west4",
                   pipeline_root="gs://amc-test-bucket/root", raw_data_path="gs://amc-test-bucket/raw",
                   image="europe-docker.pkg.dev/amc-test-project/amc/amc-tf:0.1.0")


@pytest.fixture(scope="module")
def vertex_spec(tmp_path_factory):
    from pipeline import vertex_runner
    out = str(tmp_path_factory.mktemp("vertex") / "amc_gan_vertex.json")
    vertex_runner.compile_pipeline(vertex_runner.VertexSettings(**VERTEX_ARGS), out)
    return out


def test_vertex_spec_compiles_offline_and_validates(vertex_spec):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    with open(vertex_spec) as f:
        job = json.load(f)
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec(),
                                 ignore_unknown_fields=True)
    assert spec.pipeline_info.name == "amc-gan"
    tasks = set(spec.root.dag.tasks)
    for task in ("VideoExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
                 "classifier_trainer", "model_trainer", "Evaluator", "Pusher"):
        assert task in tasks, f"{task} missing from {sorted(tasks)}"
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    images = {e["container"]["image"] for e in executors.values() if "container" in e}
    assert images == {VERTEX_ARGS["image"]}
    # The GAN Trainer runs on Vertex Training with the GPU machine spec.
    gan_params = json.dumps(json_format.MessageToDict(
        spec.components[spec.root.dag.tasks["model_trainer"].component_ref.name]))
    gan_task = json.dumps(json_format.MessageToDict(spec.root.dag.tasks["model_trainer"]))
    blob = gan_params + gan_task + json.dumps(executors)
    for needle in ("a2-highgpu-1g", "NVIDIA_TESLA_A100", "ai_platform_enable_vertex",
                   configs.MODEL_RUN_FN):
        assert needle in blob, needle
    # ExampleGen's Beam job goes to Dataflow.
    example_gen_exec = [e for name, e in executors.items() if "VideoExampleGen" in name][0]
    args = " ".join(example_gen_exec["container"].get("args", []))
    for needle in ("--runner=DataflowRunner", "--project=amc-test-project",
                   "--region=europe-west4", "gs://amc-test-bucket/root/beam-tmp"):
        assert needle in args, needle
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://amc-test-bucket/root"


@pytest.mark.parametrize("model", ["imaginator", "twostreamvan", "g3an"])
def test_vertex_spec_of_another_model_family(tmp_path, model):
    """compile-vertex --model M (its paper preset by default): the same DAG, named for the
    family, whose Trainers train and export that family."""
    from pipeline import vertex_runner
    out = str(tmp_path / f"{model}_vertex.json")
    vertex_runner.compile_pipeline(vertex_runner.VertexSettings(**VERTEX_ARGS, model=model), out)
    with open(out) as f:
        job = json.load(f)
    spec = job["pipelineSpec"]
    assert spec["pipelineInfo"]["name"] == configs.vertex_pipeline_name(model)
    assert {"classifier_trainer", "model_trainer", "Evaluator", "Pusher"} <= set(
        spec["root"]["dag"]["tasks"])
    trainer = json.dumps(spec["root"]["dag"]["tasks"]["model_trainer"])
    assert model in trainer and "amc-gan" not in trainer
    assert f"serving_model/{configs.model_name(model)}" in json.dumps(job)


def test_vertex_settings_reject_local_paths():
    from pipeline import vertex_runner
    with pytest.raises(ValueError, match="pipeline_root must be a gs:// path"):
        vertex_runner.VertexSettings(**{**VERTEX_ARGS, "pipeline_root": "/tmp/root"})
    with pytest.raises(ValueError, match="has no run settings"):
        vertex_runner.VertexSettings(**{**VERTEX_ARGS, "preset": "huge"})


def test_vertex_default_preset_is_the_familys_paper_preset():
    """compile-vertex without --preset trains each family at its own paper sizes."""
    from pipeline import vertex_runner
    expected = {"amc-gan": "paper-natops", "imaginator": "paper-natops",
                "twostreamvan": "paper-mug", "g3an": "paper"}
    for model, preset in expected.items():
        assert vertex_runner.VertexSettings(**VERTEX_ARGS, model=model).preset == preset, model


def test_submit_vertex_builds_pipeline_job_without_sending(vertex_spec):
    from google.auth.credentials import AnonymousCredentials
    from pipeline import vertex_runner
    job = vertex_runner.build_pipeline_job(vertex_spec, VERTEX_ARGS["project"],
                                           VERTEX_ARGS["region"], VERTEX_ARGS["pipeline_root"],
                                           credentials=AnonymousCredentials())
    resource = job._gca_resource
    assert resource.display_name == "amc-gan"
    assert resource.runtime_config.gcs_output_directory == VERTEX_ARGS["pipeline_root"]
    from google.protobuf import json_format
    pipeline_spec = json_format.MessageToDict(resource._pb.pipeline_spec)
    assert "model_trainer" in pipeline_spec["root"]["dag"]["tasks"]
    assert job.project == VERTEX_ARGS["project"] and job.location == VERTEX_ARGS["region"]
