"""`amc-tf demo` (the README's main job) end to end, at the `test` preset on a tiny set. The
AMC-GAN demo's run is also the TFX pipeline's end-to-end test: its home is then run again with
`tfx pipeline create` / `tfx run create` against the blessed baseline."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fixtures

VENV_BIN = os.path.dirname(sys.executable)
DEMO_ARGS = ["demo", "--preset", "test", "--clips", "32", "--num-classes", "4",
             "--beam-workers", "1"]
OTHER_FAMILIES = ("imaginator", "twostreamvan", "g3an")

# The other families' demos one after another in one Python process, each through
# `amc_app.cli.main` (what the `amc-tf` script calls) with its stdout and stderr in files of
# its own: the imports (TensorFlow, TFX, Beam, TFMA, ~35 s of CPU) are paid once, not three
# times. The AMC-GAN demo runs the `amc-tf` script itself.
DEMOS_IN_ONE_PROCESS = textwrap.dedent("""
    import json, os, sys
    from amc_app import cli
    args, root = json.loads(sys.argv[1]), sys.argv[2]
    codes = {}
    for model in json.loads(sys.argv[3]):
        home = os.path.join(root, model)
        os.makedirs(home)
        saved = os.dup(1), os.dup(2)
        with open(os.path.join(root, model + ".out"), "w") as out, \\
                open(os.path.join(root, model + ".err"), "w") as err:
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
            try:
                codes[model] = cli.main(args + ["--home", os.path.join(home, "demo"),
                                                "--model", model])
            finally:
                sys.stdout.flush(); sys.stderr.flush()
                os.dup2(saved[0], 1); os.dup2(saved[1], 2)
    print(json.dumps(codes))
""")


@pytest.fixture(scope="module")
def other_family_demos(tmp_path_factory):
    """{model: (exit code, stdout, stderr, its tmp_path)} of the three other families' demos."""
    root = tmp_path_factory.mktemp("family_demos")
    proc = subprocess.run([sys.executable, "-c", DEMOS_IN_ONE_PROCESS, json.dumps(DEMO_ARGS),
                           str(root), json.dumps(OTHER_FAMILIES)],
                          capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    codes = json.loads(proc.stdout.strip().splitlines()[-1])
    return {model: (codes[model], (root / f"{model}.out").read_text(),
                    (root / f"{model}.err").read_text(), root / model)
            for model in OTHER_FAMILIES}


@pytest.mark.slow
@pytest.mark.parametrize("model", ("amc-gan",) + OTHER_FAMILIES)
def test_demo_runs_pipeline_serves_and_writes_videos(tmp_path, model, request):
    """Every model family goes the whole way: pipeline, blessing, push, gRPC generation."""
    if model == "amc-gan":
        home = tmp_path / "demo"
        # Raw data with its own class names (the demo uses a raw set already in its home).
        fixtures.write_natops_named_gestures(home / "raw", clips=32, seed=0, num_classes=4)
        out = subprocess.run([os.path.join(VENV_BIN, "amc-tf")] + DEMO_ARGS +
                             ["--home", str(home), "--model", model],
                             capture_output=True, text=True, timeout=1500)
        code, stdout, stderr = out.returncode, out.stdout, out.stderr
    else:
        code, stdout, stderr, tmp_path = request.getfixturevalue("other_family_demos")[model]
        home = tmp_path / "demo"
    assert code == 0, stdout[-3000:] + stderr[-3000:]
    assert "generated-video accuracy" in stdout
    # The console shows stages and components; the libraries' stderr chatter goes to the log.
    for component in ("VideoExampleGen", "model_trainer", "Evaluator", "Pusher"):
        assert f"[demo]   {component} finished" in stdout, component
    for noise in ("cuInit", "cuda", "Discarding unparseable", "ran out of data"):
        assert noise not in stderr, (noise, stderr[-2000:])
    log = (home / "logs" / "demo.log").read_text()
    assert "ran out of data" in log                # Keras's note after the finite eval, kept

    with open(home / "demo_report.json") as f:
        report = json.load(f)
    assert set(report["components"].values()) == {"COMPLETE"}
    assert 0.0 <= report["generated_video_accuracy"] <= 1.0
    assert 0.0 <= report["real_clip_accuracy"] <= 1.0
    # The whole suite and the judges' figures; SSIM / PSNR only where the family takes y_a.
    from amc_tf.metrics import suite
    from amc_tf.models import get_family
    assert set(report["suite"]) == set(suite.METRICS)
    assert report["suite"]["inception_score"] >= 1.0 - 1e-6
    if get_family(model).uses_appearance:
        assert 0.0 < report["suite"]["ssim"] <= 1.0
    else:
        assert report["suite"]["ssim"] is None and report["suite"]["psnr"] is None
    assert "classifier_real_accuracy" in report["judges"]
    assert "accuracy_ratio" in stdout and "worst class" in stdout
    assert report["pushed"] is True
    outputs = report["outputs"]
    gifs = [p for name, p in outputs.items() if name != "contact_sheet"]
    assert len(gifs) == 4
    import imageio.v2 as imageio
    from PIL import Image
    frames = np.asarray(imageio.mimread(gifs[0]))
    assert frames.ndim == 4 and frames.shape[0] >= 2, frames.shape
    # Asked over gRPC with one appearance and seed, each class gives its own video.
    videos = [np.asarray(imageio.mimread(path)) for path in gifs]
    assert all(not np.array_equal(videos[0], v) for v in videos[1:])
    sheet = Image.open(outputs["contact_sheet"])
    assert sheet.size[1] == 4 * frames.shape[1], "one row per class"
    if model == "amc-gan":
        _check_pipeline_run_then_tfx_cli_run_against_the_baseline(str(home), tmp_path)


def _check_pipeline_run_then_tfx_cli_run_against_the_baseline(home, tmp_path):
    """Run 1 (the demo's, the Python API): all COMPLETE, metrics, blessed and pushed. Run 2 (tfx
    CLI) with an impossible threshold: not blessed, nothing new pushed, run 1's model as
    baseline."""
    from pipeline import configs, local_runner, results

    layout = local_runner.home_layout(home)
    raw = os.path.join(home, "raw")
    nodes = results.latest_run(layout["metadata_path"], configs.PIPELINE_NAME)
    for node in ("VideoExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
                 "classifier_trainer", "model_trainer", "Evaluator", "Pusher"):
        assert nodes[node]["state"] == "COMPLETE", (node, nodes[node]["state"])
    summary = results.run_summary(layout)
    overall = summary["evaluation"]["overall"]
    # The whole suite, overall and per class (AMC-GAN has y_a: SSIM / PSNR apply).
    from amc_tf.metrics import suite
    class_slices = [k for k in summary["evaluation"] if k.startswith("motion_class=")]
    assert class_slices
    for metric in suite.METRICS:
        assert metric in overall, metric
        for name in class_slices:
            assert metric in summary["evaluation"][name], (metric, name)
    assert set(summary["suite"]["judges"]) >= {
        "classifier_real_accuracy", "keypoint_detector_error_px",
        "keypoint_classifier_real_accuracy"}
    # The table `amc-tf pipeline run`, the demo and `amc-tf evaluate` print, by class name.
    from serving.evaluate import format_report
    table = format_report(summary["suite"])
    assert "accuracy_ratio" in table and "judge: keypoint_detector_error_px" in table
    assert set(summary["suite"]["table"]) - {"overall"} <= set(
        json.load(open(os.path.join(summary["examples_uri"], "summary.json")))["class_names"])
    assert 0.0 <= summary["classifier"]["accuracy"] <= 1.0      # read next to the model
    assert summary["examples_uri"] == nodes["VideoExampleGen"]["outputs"]["examples"][0]["uri"]
    assert summary["blessed"] and summary["pushed"]
    versions = os.listdir(layout["serving_model_dir"])
    assert len(versions) == 1
    assert os.path.exists(os.path.join(layout["serving_model_dir"], versions[0],
                                       "saved_model.pb"))
    first_model = nodes["model_trainer"]["outputs"]["model"][0]["uri"]
    # The served names are the raw data's classes.txt, not the built-in gesture names.
    from serving.export import read_metadata
    served = read_metadata(os.path.join(layout["serving_model_dir"], versions[0]))
    with open(os.path.join(raw, "classes.txt")) as f:
        assert served["class_names"] == f.read().split()
    assert all(n.startswith("natops_") for n in served["class_names"])

    # Run 2 trains a new candidate (other steps) on the same data: with the cache the data's
    # components and the judges' Trainer are reused, the model Trainer, Evaluator and Pusher run.
    steps = configs.model_train_steps("amc-gan", "test") + 1
    env = dict(os.environ, LOCAL_HOME=str(tmp_path / "tfx_local"), AMC_HOME=home,
               AMC_PRESET="test", AMC_RAW=raw, AMC_EVAL_THRESHOLD="1e9", AMC_CACHE="1",
               AMC_MODEL_STEPS=str(steps))
    assert local_runner.ENV_CACHE in env and local_runner.ENV_MODEL_STEPS in env
    tfx_cli = os.path.join(VENV_BIN, "tfx")
    runner = os.path.join(configs.REPO_ROOT, "pipeline", "local_runner.py")
    for cmd in ([tfx_cli, "pipeline", "create", "--engine", "local", "--pipeline_path", runner],
                [tfx_cli, "run", "create", "--engine", "local", "--pipeline_name",
                 configs.PIPELINE_NAME]):
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500)
        assert out.returncode == 0, (cmd, out.stdout[-3000:], out.stderr[-3000:])

    summary = results.run_summary(layout)
    assert summary["blessed"] is False
    assert summary["baseline_model"] == [first_model]
    nodes = results.latest_run(layout["metadata_path"], configs.PIPELINE_NAME)
    for node in ("model_trainer", "Evaluator", "Pusher"):
        assert nodes[node]["state"] == "COMPLETE", (node, nodes[node]["state"])
    for node in ("VideoExampleGen", "StatisticsGen", "classifier_trainer"):
        assert nodes[node]["state"] == "CACHED", (node, nodes[node]["state"])
    assert nodes["model_trainer"]["outputs"]["model"][0]["uri"] != first_model
    assert os.listdir(layout["serving_model_dir"]) == versions, "pushed without blessing"
