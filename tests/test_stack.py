"""The TFX 1.21 / TF 2.21 / Keras 3 stack is real: components import and a LocalDagRunner runs."""
import os
import shutil
import subprocess
import sys

import pytest


def test_core_versions_are_the_pinned_stack():
    from amc_tf.info import stack_versions
    versions = stack_versions()
    assert versions["tensorflow"].startswith("2.21.")
    assert versions["keras"].startswith("3.")
    assert versions["tfx"].startswith("1.21.")
    assert versions["ml-metadata"] == "1.17.1"
    assert versions["tensorflow-data-validation"] == "1.16.1"
    import tensorflow as tf
    assert tf.keras.__name__.startswith("keras"), "tf.keras must be Keras 3"


def test_tfx_components_import():
    from tfx import v1 as tfx
    for name in ("StatisticsGen", "SchemaGen", "ExampleValidator", "Evaluator", "Pusher",
                 "Trainer", "ImportSchemaGen", "ImportExampleGen"):
        assert hasattr(tfx.components, name), name
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.proto import config_pb2  # TFMA 0.52 no longer re-exports it
    assert hasattr(tfma, "run_model_analysis") and hasattr(config_pb2, "EvalConfig")
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    assert hasattr(prediction_service_pb2_grpc, "PredictionServiceStub")


def test_kubeflow_v2_runner_importable():
    from tfx import v1 as tfx
    runner_cls = tfx.orchestration.experimental.KubeflowV2DagRunner
    assert runner_cls.__name__ == "KubeflowV2DagRunner"
    import kfp  # noqa: F401  (without kfp the runner import yields nothing)


def test_tfdv_sql_util_compat_raises_clearly():
    from tfx_bsl.arrow import sql_util
    with pytest.raises(NotImplementedError, match="SQL-based slicing"):
        sql_util.RecordBatchSQLSliceQuery("SELECT 1", None)
    import tensorflow_data_validation as tfdv
    assert hasattr(tfdv, "generate_statistics_from_tfrecord")


@pytest.mark.subset_of_slow("test_demo::test_demo_runs_pipeline_serves_and_writes_videos "
                            "(it runs `tfx pipeline create` and `tfx run create` from the venv)")
def test_tfx_cli_present_in_venv():
    tfx_cli = os.path.join(os.path.dirname(sys.executable), "tfx")
    assert os.path.exists(tfx_cli), "tfx CLI missing from the venv"
    out = subprocess.run([tfx_cli, "--help"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "pipeline" in out.stdout and "run" in out.stdout


def _write_examples(path, n=24):
    import tensorflow as tf
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(n):
            example = tf.train.Example(features=tf.train.Features(feature={
                "motion_class": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 3])),
                "speed": tf.train.Feature(float_list=tf.train.FloatList(value=[0.5 * i])),
                "subject": tf.train.Feature(bytes_list=tf.train.BytesList(
                    value=[f"s{i % 4}".encode()])),
            }))
            writer.write(example.SerializeToString())


def test_local_dag_runner_validation_chain_completes(tmp_path):
    from tfx import v1 as tfx
    from tfx.orchestration import metadata
    import ml_metadata as mlmd

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _write_examples(str(data_dir / "examples.tfrecord"))

    example_gen = tfx.components.ImportExampleGen(input_base=str(data_dir))
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"])
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    metadata_path = str(tmp_path / "metadata.sqlite")
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="stack-check",
        pipeline_root=str(tmp_path / "root"),
        components=[example_gen, statistics_gen, schema_gen, example_validator],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata_path),
        beam_pipeline_args=["--direct_num_workers=1"],
    )
    tfx.orchestration.LocalDagRunner().run(pipeline)

    store = mlmd.MetadataStore(metadata.sqlite_metadata_connection_config(metadata_path))
    executions = store.get_executions()
    types = {t.id: t.name for t in store.get_execution_types()}
    by_type = {types[e.type_id].rsplit(".", 1)[-1]: e for e in executions}
    for name in ("ImportExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator"):
        assert name in by_type, f"{name} never ran: {sorted(by_type)}"
        assert by_type[name].last_known_state == mlmd.proto.Execution.COMPLETE, name
    schema_artifacts = [a for a in store.get_artifacts()
                        if a.type_id == store.get_artifact_type("Schema").id]
    assert schema_artifacts and os.path.exists(
        os.path.join(schema_artifacts[0].uri, "schema.pbtxt"))


def test_cli_lists_subcommands():
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "amc-tf"), "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "info" in out.stdout
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "amc-tf"), "info"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "tensorflow" in out.stdout and "NOT INSTALLED" not in out.stdout
