"""VideoExampleGen: a TFX FileBasedExampleGen whose Beam executor runs the B.1 preprocessing.

    example_gen = VideoExampleGen(input_base=RAW_DIR, dataset="gestures",
                                  custom_config={"augment_copies": 2, "num_classes": 12})
    example_gen.outputs["examples"]   # splits "train" and "eval", split by subject

The executor runs the same Beam pipeline as `amc-tf preprocess` (`preprocess.build_pipeline`).
Besides the standard `Split-train/` and `Split-eval/` folders, the examples artifact's uri holds
`rejected/rejected-*.jsonl` (one JSON record per rejected clip, with its reason) and
`summary.json` (accepted/rejected counts per split and reason).
"""

from typing import Any, Dict, List, Optional

from absl import logging
from google.protobuf import json_format, struct_pb2
from tfx import types
from tfx.components.example_gen import write_split
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from amc_tf.data import datasets, preprocess

DATASET_KEY = "dataset"


def custom_config_to_dict(custom_config_json):
    """The executor-side dict of the component's custom_config (a JSON CustomConfig proto)."""
    if not custom_config_json:
        return {}
    config = example_gen_pb2.CustomConfig()
    proto_utils.json_to_proto(custom_config_json, config)
    struct = struct_pb2.Struct()
    if not config.custom_config.Unpack(struct):
        raise ValueError(f"VideoExampleGen custom_config must hold a Struct, got "
                         f"{config.custom_config.type_url}")
    return json_format.MessageToDict(struct)


def _options_and_dataset(exec_properties):
    config = custom_config_to_dict(
        exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY))
    dataset = config.pop(DATASET_KEY, None)
    datasets.get(dataset)  # a missing or unknown name fails here, naming the choices
    for key in ("augment_copies", "seed"):  # Struct numbers arrive as floats
        if key in config:
            config[key] = int(config[key])
    return dataset, preprocess.PreprocessOptions.from_dict(config)


class Executor(base_beam_executor.BaseBeamExecutor):
    """Runs `preprocess.build_pipeline`, the CLI's pipeline, with the artifact uri as output.

    Unlike TFX's BaseExampleGenExecutor (whose per-split hooks it therefore does not need) it
    splits by subject (not by hash), writes the rejected records next to the splits, and writes
    the splits without TFX's extra shuffle, whose DirectRunner implementation would hold every
    example in memory (the Trainers shuffle anyway).
    """

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY])
        examples.split_names = artifact_utils.encode_split_names(list(preprocess.SPLITS))
        dataset, options = _options_and_dataset(exec_properties)
        with self._make_beam_pipeline() as pipeline:
            preprocess.build_pipeline(
                pipeline, dataset, exec_properties[standard_component_specs.INPUT_BASE_KEY],
                examples.uri, options)
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, write_split.to_file_format_str(
            example_gen_pb2.FORMAT_TFRECORDS_GZIP))
        summary = preprocess.read_summary(examples.uri)
        logging.info("VideoExampleGen: %d clips accepted (%d examples), %d rejected %s",
                     summary["accepted_clips"], summary["examples"], summary["rejected_clips"],
                     summary["rejected_by_reason"])


class VideoExampleGen(FileBasedExampleGen):
    """ExampleGen for raw video clips (NATOPS- or MUG-style layouts), preprocessed as in B.1.

    Args:
      input_base: the raw directory (layouts in `amc_tf.data.adapters`).
      dataset: a dataset style (`amc_tf.data.datasets.names()`): "gestures" or "faces".
      custom_config: `preprocess.PreprocessOptions` fields, e.g. augment_copies, eval_fraction,
        seed, num_classes, flip_probability, strides.
    """

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, input_base: str, dataset: str = "gestures",
                 custom_config: Optional[Dict[str, Any]] = None):
        style = datasets.get(dataset)
        config = dict(custom_config or {})
        preprocess.PreprocessOptions.from_dict(config)  # fail at pipeline build, not at run
        config[DATASET_KEY] = dataset
        struct = struct_pb2.Struct()
        struct.update(config)
        packed = example_gen_pb2.CustomConfig()
        packed.custom_config.Pack(struct)
        # The driver fingerprints the style's annotation files to tell whether the input changed.
        input_config = example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name="raw", pattern=style.input_pattern)])
        # Names the output splits; the executor assigns clips to them by subject, not by hash.
        output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=4),
            example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=1)]))
        super().__init__(input_base=input_base, input_config=input_config,
                         output_config=output_config, custom_config=packed)
