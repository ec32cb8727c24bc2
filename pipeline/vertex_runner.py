"""Compiles the pipeline for Vertex AI Pipelines (KubeflowV2DagRunner) and submits it.

Thin: gathers the cloud settings and calls `create_pipeline`. Compiling needs no cloud access: the
Trainers are referenced by module path (`run_fn`), so no module file is uploaded. The GAN Trainer
runs as a Vertex AI Training job on a GPU machine (MirroredStrategy over its GPUs), or with
`replica_count` > 1 on that many such machines (a chief pool and a worker pool: Vertex sets
TF_CONFIG, the Trainer trains under MultiWorkerMirroredStrategy, docs/multi_worker.md);
ExampleGen's Beam job on Dataflow.
"""

import dataclasses
import os
from typing import Optional

from amc_tf.models.family import DEFAULT_FAMILY
from pipeline import configs


@dataclasses.dataclass
class VertexSettings:
    project: str
    region: str
    pipeline_root: str            # gs://bucket/path: artifacts of every run
    raw_data_path: str            # gs://bucket/raw: clips in the adapter's layout
    image: str                    # container image with amc_tf installed (see README)
    preset: Optional[str] = None  # default: the family's paper preset (default_preset)
    dataset: str = "gestures"
    model: str = DEFAULT_FAMILY
    # Classes ExampleGen accepts (the first N of classes.txt); None: all it lists.
    num_classes: Optional[int] = None
    gpu_machine_type: str = "a2-highgpu-1g"
    gpu_type: str = "NVIDIA_TESLA_A100"
    gpu_count: int = 1
    # GPU machines of the GAN Trainer's job (chief + replica_count - 1 workers).
    replica_count: int = 1
    dataflow_machine_type: str = "n1-standard-8"
    container_repo_root: str = "/amc_tf"   # where the image holds this repo (schemas/)
    serving_model_dir: Optional[str] = None

    def __post_init__(self):
        for name in ("pipeline_root", "raw_data_path"):
            value = getattr(self, name)
            if not value.startswith("gs://"):
                raise ValueError(f"{name} must be a gs:// path for Vertex AI, got {value!r}")
        if self.gpu_count < 1:
            raise ValueError(f"gpu_count must be >= 1, got {self.gpu_count}")
        if isinstance(self.replica_count, bool) or not isinstance(self.replica_count, int) \
                or self.replica_count < 1:
            raise ValueError(f"replica_count (the GAN Trainer's machines: 1 chief + workers) "
                             f"must be a whole number >= 1, got {self.replica_count!r}")
        if self.preset is None:
            self.preset = default_preset(self.model)
        if self.preset not in configs.RUN_SETTINGS:
            raise ValueError(f"preset {self.preset!r} has no run settings; choose from "
                             f"{sorted(configs.RUN_SETTINGS)}")
        if self.serving_model_dir is None:
            self.serving_model_dir = f"{self.pipeline_root.rstrip('/')}/serving_model/" \
                                     f"{configs.model_name(self.model)}"


def default_preset(model):
    """The preset a Vertex run trains by default: the family's paper sizes (paper-natops where
    the family has it, AMC-GAN's and ImaGINator's; else its first paper preset)."""
    from amc_tf.models import get_family
    presets = get_family(model).presets
    paper = [p for p in presets if p.startswith("paper")]
    return "paper-natops" if "paper-natops" in presets else (paper or list(presets))[0]


def dataflow_beam_args(settings: VertexSettings):
    """Beam args that run ExampleGen / StatisticsGen / Evaluator on Dataflow."""
    return [
        "--runner=DataflowRunner",
        f"--project={settings.project}",
        f"--region={settings.region}",
        f"--temp_location={settings.pipeline_root.rstrip('/')}/beam-tmp",
        f"--machine_type={settings.dataflow_machine_type}",
        f"--sdk_container_image={settings.image}",
        "--experiments=use_runner_v2",
    ]


def vertex_training_args(settings: VertexSettings):
    """Vertex AI custom-job spec for the model Trainer: one GPU machine (MirroredStrategy over
    its GPUs), or with replica_count N > 1 the chief pool (1 replica) and a worker pool (N - 1)
    of the same machine: Vertex sets TF_CONFIG on each, MultiWorkerMirroredStrategy follows."""
    def pool(replicas):
        return {
            "machine_spec": {
                "machine_type": settings.gpu_machine_type,
                "accelerator_type": settings.gpu_type,
                "accelerator_count": settings.gpu_count,
            },
            "replica_count": replicas,
            "container_spec": {"image_uri": settings.image},
        }
    pools = [pool(1)]
    if settings.replica_count > 1:
        pools.append(pool(settings.replica_count - 1))
    return {"project": settings.project, "worker_pool_specs": pools}


def build_pipeline(settings: VertexSettings):
    from pipeline.amc_pipeline import create_pipeline
    run = configs.RUN_SETTINGS[settings.preset]
    schema = os.path.join(settings.container_repo_root, "schemas", settings.dataset,
                          "schema.pbtxt")
    example_gen_config = configs.example_gen_config(settings.preset, settings.dataset,
                                                    num_classes=settings.num_classes)
    return create_pipeline(
        pipeline_name=configs.vertex_pipeline_name(settings.model),
        pipeline_root=settings.pipeline_root,
        raw_data_path=settings.raw_data_path,
        dataset=settings.dataset,
        model=settings.model,
        preset=settings.preset,
        classifier_run_fn=configs.CLASSIFIER_RUN_FN,
        model_run_fn=configs.MODEL_RUN_FN,
        classifier_train_steps=run.classifier_train_steps,
        model_train_steps=configs.model_train_steps(settings.model, settings.preset),
        eval_ratio_threshold=run.eval_ratio_threshold,
        eval_real_accuracy_threshold=run.eval_real_accuracy_threshold,
        eval_change_tolerance=run.eval_change_tolerance,
        serving_model_dir=settings.serving_model_dir,
        schema_path=schema,
        example_gen_config=example_gen_config,
        beam_pipeline_args=dataflow_beam_args(settings),
        vertex_training_args=vertex_training_args(settings),
        vertex_region=settings.region,
    )


def compile_pipeline(settings: VertexSettings, output_path: str):
    """Writes the Vertex AI pipeline job spec (JSON) to `output_path`; returns the path."""
    from tfx import v1 as tfx
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=settings.image),
        output_dir=os.path.dirname(os.path.abspath(output_path)),
        output_filename=os.path.basename(output_path))
    runner.run(build_pipeline(settings), write_out=True)
    return output_path


def build_pipeline_job(spec_path: str, project: str, region: str, pipeline_root: str,
                       credentials=None, enable_caching: bool = False,
                       display_name: Optional[str] = None):
    """The `aiplatform.PipelineJob` for a compiled spec (not yet submitted)."""
    from google.cloud import aiplatform
    if credentials is None:
        import google.auth
        credentials, _ = google.auth.default()
    return aiplatform.PipelineJob(
        display_name=display_name or _spec_pipeline_name(spec_path),
        template_path=spec_path,
        pipeline_root=pipeline_root,
        project=project,
        location=region,
        credentials=credentials,
        enable_caching=enable_caching,
    )


def _spec_pipeline_name(spec_path):
    """The pipeline name a compiled spec carries (pipelineInfo.name)."""
    import json
    import tensorflow as tf
    with tf.io.gfile.GFile(spec_path) as f:
        return json.loads(f.read())["pipelineSpec"]["pipelineInfo"]["name"]


def submit(spec_path: str, project: str, region: str, pipeline_root: str,
           service_account: Optional[str] = None):
    """Builds the PipelineJob and submits it to Vertex AI (needs Google Cloud credentials)."""
    job = build_pipeline_job(spec_path, project, region, pipeline_root)
    job.submit(service_account=service_account)
    return job

