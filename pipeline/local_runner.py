"""Runs the pipeline on TFX's local engine (LocalDagRunner, SQLite MLMD).

Thin: gathers settings and calls `create_pipeline`. Two ways in:
  tfx pipeline create --engine local --pipeline_path pipeline/local_runner.py
  tfx run create --engine local --pipeline_name amc_gan
(settings from the AMC_* environment variables below), or `amc-tf pipeline run` (flags).
Everything a run writes stays under one home directory:
  <home>/pipeline_root/          artifacts of every component
  <home>/metadata/metadata.sqlite  the MLMD store
  <home>/serving_model/<model name>/<version>/  models pushed for TF Serving (amc_gan, ...)
"""

import os
from typing import List, Optional

from amc_tf.models.family import DEFAULT_FAMILY
from pipeline import configs

# Environment the tfx CLI path reads (it executes this file).
ENV_HOME = "AMC_HOME"                  # default ./amc_home
ENV_MODEL = "AMC_MODEL"                # model family, default amc-gan
ENV_PRESET = "AMC_PRESET"              # default cpu
ENV_RAW = "AMC_RAW"                    # default <home>/raw
ENV_DATASET = "AMC_DATASET"            # default gestures
ENV_THRESHOLD = "AMC_EVAL_THRESHOLD"   # overrides the preset's accuracy-ratio threshold
ENV_PIPELINE_NAME = "AMC_PIPELINE_NAME"  # default: the model's name (amc_gan)
ENV_BEAM_WORKERS = "AMC_BEAM_WORKERS"  # DirectRunner workers, default 1 (in-process)
ENV_MODEL_STEPS = "AMC_MODEL_STEPS"    # the model Trainer's steps, default the preset's
ENV_CACHE = "AMC_CACHE"                # 1: reuse unchanged components' outputs (as --cache)


def home_layout(home, model=DEFAULT_FAMILY):
    home = os.path.abspath(home)
    return {
        "home": home,
        "model": model,
        "pipeline_root": os.path.join(home, "pipeline_root"),
        "metadata_path": os.path.join(home, "metadata", "metadata.sqlite"),
        "serving_model_dir": os.path.join(home, "serving_model", configs.model_name(model)),
    }


def local_beam_args(workers: int = 1) -> List[str]:
    if workers <= 1:
        return ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
    return [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]


def local_pipeline(home: str, preset: str = "cpu", raw_data_path: Optional[str] = None,
                   dataset: str = configs.DATASET, eval_ratio_threshold: Optional[float] = None,
                   pipeline_name: Optional[str] = None, beam_workers: int = 1,
                   classifier_train_steps: Optional[int] = None,
                   model_train_steps: Optional[int] = None, enable_cache: bool = False,
                   model: str = DEFAULT_FAMILY, augmentation: Optional[dict] = None):
    """The pipeline for a local run with everything under `home`; `augmentation`: ExampleGen
    options over the preset's and dataset's default (configs.example_gen_config), e.g.
    {"augment_copies": 2, "flip_probability": 0.5}."""
    from tfx import v1 as tfx

    from pipeline.amc_pipeline import create_pipeline

    if preset not in configs.RUN_SETTINGS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(configs.RUN_SETTINGS)}")
    run = configs.RUN_SETTINGS[preset]
    layout = home_layout(home, model)
    raw_data_path = os.path.abspath(raw_data_path or os.path.join(layout["home"], "raw"))
    if not os.path.isdir(raw_data_path):
        raise FileNotFoundError(
            f"raw data directory {raw_data_path} does not exist; write synthetic clips with "
            f"`amc-tf synth {dataset} --out {raw_data_path}` or point --raw at your clips")
    os.makedirs(os.path.dirname(layout["metadata_path"]), exist_ok=True)
    return create_pipeline(
        pipeline_name=pipeline_name or configs.model_name(model),
        pipeline_root=layout["pipeline_root"],
        raw_data_path=raw_data_path,
        dataset=dataset,
        model=model,
        preset=preset,
        classifier_run_fn=configs.CLASSIFIER_RUN_FN,
        model_run_fn=configs.MODEL_RUN_FN,
        classifier_train_steps=classifier_train_steps or run.classifier_train_steps,
        model_train_steps=model_train_steps or configs.model_train_steps(model, preset),
        eval_ratio_threshold=(run.eval_ratio_threshold if eval_ratio_threshold is None
                              else eval_ratio_threshold),
        eval_real_accuracy_threshold=run.eval_real_accuracy_threshold,
        eval_change_tolerance=run.eval_change_tolerance,
        serving_model_dir=layout["serving_model_dir"],
        schema_path=configs.schema_path(dataset),
        example_gen_config=configs.example_gen_config(preset, dataset, **(augmentation or {})),
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            layout["metadata_path"]),
        beam_pipeline_args=local_beam_args(beam_workers),
        enable_cache=enable_cache,
    )


def run(**kwargs):
    """Builds and runs the local pipeline; returns the home layout."""
    from tfx import v1 as tfx
    tfx.orchestration.LocalDagRunner().run(local_pipeline(**kwargs))
    return home_layout(kwargs["home"], kwargs.get("model", DEFAULT_FAMILY))


def _env_flag(name):
    value = os.environ.get(name, "").strip().lower()
    if value not in ("", "0", "1", "true", "false", "yes", "no"):
        raise ValueError(f"{name}={os.environ[name]!r}: use 1 or 0")
    return value in ("1", "true", "yes")


def _env_steps(name):
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name}={value!r}: a number of steps, 1 or more")
    return int(value)


def settings_from_env():
    threshold = os.environ.get(ENV_THRESHOLD)
    return dict(
        home=os.environ.get(ENV_HOME, "amc_home"),
        model=os.environ.get(ENV_MODEL, DEFAULT_FAMILY),
        preset=os.environ.get(ENV_PRESET, "cpu"),
        raw_data_path=os.environ.get(ENV_RAW) or None,
        dataset=os.environ.get(ENV_DATASET, configs.DATASET),
        eval_ratio_threshold=float(threshold) if threshold else None,
        pipeline_name=os.environ.get(ENV_PIPELINE_NAME) or None,
        beam_workers=int(os.environ.get(ENV_BEAM_WORKERS, "1")),
        model_train_steps=_env_steps(ENV_MODEL_STEPS),
        enable_cache=_env_flag(ENV_CACHE),
    )


if __name__ == "__main__":
    # `tfx pipeline create` executes this file to capture the pipeline; `tfx run create` runs it.
    from absl import logging
    from tfx import v1 as tfx
    logging.set_verbosity(logging.INFO)
    tfx.orchestration.LocalDagRunner().run(local_pipeline(**settings_from_env()))
