"""Reads what a local pipeline run produced, from MLMD and the artifacts: states, metrics, push."""

import json
import os


def _store(metadata_path):
    import ml_metadata as mlmd
    from tfx.orchestration import metadata
    if not os.path.exists(metadata_path):
        raise FileNotFoundError(f"no MLMD store at {metadata_path}: has the pipeline run?")
    return mlmd.MetadataStore(metadata.sqlite_metadata_connection_config(metadata_path))


def latest_run(metadata_path, pipeline_name):
    """{node_id: {"state": str, "outputs": {key: [artifact, ...]}, "inputs": {...}}} of the
    latest run of `pipeline_name`."""
    import ml_metadata as mlmd
    store = _store(metadata_path)
    runs = [c for c in store.get_contexts_by_type("pipeline_run")
            if _belongs_to(store, c, pipeline_name)]
    if not runs:
        raise LookupError(f"no run of pipeline {pipeline_name!r} in {metadata_path}")
    run = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
    run_execution_ids = {e.id for e in store.get_executions_by_context(run.id)}
    nodes = {}
    prefix = f"{pipeline_name}."
    for node_ctx in store.get_contexts_by_type("node"):
        if not node_ctx.name.startswith(prefix):
            continue
        node_id = node_ctx.name[len(prefix):]
        executions = [e for e in store.get_executions_by_context(node_ctx.id)
                      if e.id in run_execution_ids]
        if not executions:
            continue
        execution = max(executions, key=lambda e: e.id)
        state = mlmd.proto.Execution.State.Name(execution.last_known_state)
        nodes[node_id] = {"state": state, "execution_id": execution.id,
                          **_events(store, execution.id)}
    return nodes


def _belongs_to(store, run_context, pipeline_name):
    parents = store.get_parent_contexts_by_context(run_context.id)
    return any(p.name == pipeline_name for p in parents) or not parents


def _events(store, execution_id):
    import ml_metadata as mlmd
    events = store.get_events_by_execution_ids([execution_id])
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    result = {"inputs": {}, "outputs": {}}
    for event in events:
        key = event.path.steps[0].key if event.path.steps else ""
        side = ("outputs" if event.type in (mlmd.proto.Event.OUTPUT,
                                            mlmd.proto.Event.DECLARED_OUTPUT) else "inputs")
        artifact = artifacts[event.artifact_id]
        result[side].setdefault(key, []).append({
            "id": artifact.id, "uri": artifact.uri,
            "properties": {k: _value(v) for k, v in artifact.custom_properties.items()}})
    return result


def _value(v):
    for field in ("int_value", "double_value", "string_value"):
        if v.HasField(field):
            return getattr(v, field)
    return None


def evaluation_metrics(evaluation_uri):
    """{slice: {metric: value}} from an Evaluator output; slice "overall" or "motion_class=N"."""
    import tensorflow_model_analysis as tfma
    result = tfma.load_eval_result(evaluation_uri)
    metrics = {}
    for slice_key, slice_metrics in result.slicing_metrics:
        name = "overall" if not slice_key else ",".join(f"{k}={v}" for k, v in slice_key)
        values = {}
        for output in slice_metrics.values():
            for sub in output.values():
                for metric, value in sub.items():
                    if "doubleValue" in value:   # NaN arrives as the string "NaN"
                        values[metric] = float(value["doubleValue"])
        metrics[name] = values
    return metrics


def _suite_report(metrics, examples_uri, model_trainer):
    """The Evaluator's metrics as `serving.evaluate`'s report (slices by class name, the judges'
    own figures from the exported model's metadata), so the same table prints everywhere."""
    from pipeline import configs
    from serving import export
    class_names = []
    if examples_uri and os.path.exists(os.path.join(examples_uri, "summary.json")):
        with open(os.path.join(examples_uri, "summary.json")) as f:
            class_names = json.load(f).get("class_names", [])
    table = {}
    for name, values in metrics.items():
        if name.startswith(f"{configs.EVAL_LABEL_KEY}="):
            index = int(float(name.split("=", 1)[1]))
            name = class_names[index] if index < len(class_names) else name
        table[name] = values
    report = {"table": table, "judges": {}, "model": None, "preset": None,
              "clips": int(metrics.get("overall", {}).get("example_count", 0))}
    if model_trainer and model_trainer["outputs"].get("model"):
        serving_dir = os.path.join(model_trainer["outputs"]["model"][0]["uri"], "Format-Serving")
        if os.path.exists(os.path.join(serving_dir, "assets", export.METADATA_FILE)):
            metadata = export.read_metadata(serving_dir)
            report.update(judges=metadata.get("judge_metrics", {}),
                          model=metadata.get("model"), preset=metadata.get("preset"))
    return report


def run_summary(layout, pipeline_name=None):
    """Summary of the latest local run under `layout` (see local_runner.home_layout)."""
    from pipeline import configs
    pipeline_name = pipeline_name or configs.PIPELINE_NAME
    nodes = latest_run(layout["metadata_path"], pipeline_name)
    summary = {"components": {n: v["state"] for n, v in nodes.items()}}
    example_gen = nodes.get("VideoExampleGen")
    if example_gen and example_gen["outputs"].get("examples"):
        summary["examples_uri"] = example_gen["outputs"]["examples"][0]["uri"]
    evaluator = nodes.get("Evaluator")
    if evaluator and evaluator["outputs"].get("evaluation"):
        uri = evaluator["outputs"]["evaluation"][0]["uri"]
        metrics = evaluation_metrics(uri)
        summary["evaluation"] = metrics
        blessing = evaluator["outputs"]["blessing"][0]["properties"]
        summary["blessed"] = bool(blessing.get("blessed", 0))
        summary["baseline_model"] = [a["uri"] for a in
                                     evaluator["inputs"].get("baseline_model", [])]
        summary["suite"] = _suite_report(metrics, summary.get("examples_uri"),
                                         nodes.get("model_trainer"))
    classifier = nodes.get("classifier_trainer")
    if classifier and classifier["outputs"].get("model"):
        from amc_tf.training.files import CLASSIFIER_METRICS_FILE
        path = os.path.join(classifier["outputs"]["model"][0]["uri"], "Format-Serving",
                            CLASSIFIER_METRICS_FILE)
        if os.path.exists(path):
            with open(path) as f:
                summary["classifier"] = json.load(f)
    pusher = nodes.get("Pusher")
    if pusher and pusher["outputs"].get("pushed_model"):
        props = pusher["outputs"]["pushed_model"][0]["properties"]
        summary["pushed"] = bool(props.get("pushed", 0))
        summary["pushed_destination"] = props.get("pushed_destination")
    return summary
