"""The command line's promise (issue 35), fuzzed like the server's: every bad invocation of every
`amc-tf` subcommand (a fixed list, then seeded draws of numeric flags and bad values) exits
non-zero within a time bound with one `error:` line and no traceback, and writes nothing. In one
process (`amc_app.cli.main`), as `amc-tf` runs it: a SystemExit with a message prints it and
exits 1."""
import os
import random
import re
import sys
import time

import pytest

import fixtures as testing
from amc_app import cli

NUM_CLASSES, NUM_KEYPOINTS = 4, 9
# One bad invocation, refused before any work: the first pays TensorFlow's import.
TIME_BOUND_S = 60.0
ERROR_LINE = re.compile(r"^amc-tf( [\w-]+)*: error: \S")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Inputs that exist (W is the folder every invocation may write to, and must not)."""
    root = tmp_path_factory.mktemp("cli_fuzz")
    data = root / "data"
    testing.write_summary(str(data), NUM_CLASSES)
    testing.write_clips(str(data), 4, NUM_CLASSES, NUM_KEYPOINTS, seed=0)
    testing.write_clips(str(data), 2, NUM_CLASSES, NUM_KEYPOINTS, seed=1, split="eval")
    raw = root / "raw" / "wave_one_arm"
    raw.mkdir(parents=True)
    (raw / "clip.txt").write_text("not a clip")
    (root / "notimage.png").write_text("plain text, not a PNG")
    (root / "empty_model" / "1").mkdir(parents=True)
    (root / "empty_model" / "1" / "saved_model.pb").write_bytes(b"")
    earlier = root / "earlier" / "model" / "checkpoints"
    earlier.mkdir(parents=True)
    (earlier / "ckpt-10.index").write_bytes(b"an earlier run")
    (root / "nonempty").mkdir()
    (root / "nonempty" / "keep.txt").write_text("the user's")
    return root


def _invocations(w):
    d, raw, out = f"{w}/data", f"{w}/raw", f"{w}/new_out"
    train = ["train", "--preset", "test", "--data", d, "--out", out]
    compare = ["compare", "--data", d, "--models", "amc-gan", "--preset", "test", "--out", out]
    generate = ["generate", "--motion", "0", "--out", f"{out}/v.gif", "--server", "127.0.0.1:1",
                "--timeout", "2"]
    serve = ["serve", "--model-base-path", f"{w}/empty_model"]
    evaluate = ["evaluate", "--data", d]
    synth = ["synth", "gestures", "--out", out]
    preprocess = ["preprocess", "--dataset", "gestures", "--raw", raw, "--out", out]
    sheet = ["contact-sheet", d, "--out", f"{out}/sheet.png"]
    return [
        ["no-such-command"], ["info", "--bogus"],
        # train
        ["train"], train + ["--steps", "0"], train + ["--steps", "-3"],
        train + ["--steps", "abc"], train + ["--classifier-steps", "-1"],
        train + ["--batch-size", "0"], train + ["--num-classes", "1"],
        train + ["--model", "nope"], train + ["--preset", "nope"],
        ["train", "--data", f"{w}/missing", "--out", out], ["train", "--data", raw, "--out", out],
        train + ["--set", "gramm=channel"], train + ["--set", "gram"],
        train + ["--set", "gram=pixels"], train + ["--ablation", "nope"],
        train + ["--overwrite"],
        ["train", "--preset", "test", "--data", d, "--out", f"{w}/earlier", "--no-resume"],
        train + ["--judges", f"{w}/missing_judges"],
        train + ["--model", "g3an", "--preset", "paper-natops"],
        # compare
        ["compare"], compare[:-2], compare + ["--models", "nope"],
        compare + ["--models", "g3an,g3an"], compare + ["--models", ","],
        compare + ["--rows", "0"], compare + ["--steps", "0"], compare + ["--steps", "-3"],
        compare + ["--budget-minutes", "0"], compare + ["--classifier-steps", "0"],
        compare + ["--seed", str(1 << 64)],
        ["compare", "--data", f"{w}/missing", "--models", "amc-gan", "--out", out],
        ["compare", "--data", raw, "--models", "amc-gan", "--out", out],
        compare + ["--preset", "nope"], compare + ["--preset", "paper-natops"],
        # generate
        ["generate"], generate + ["--seed", str(1 << 64)], generate + ["--seed", "x"],
        generate + ["--image", f"{w}/missing.png"], generate + ["--image", f"{w}/notimage.png"],
        generate, generate + ["--fps", "0"], generate + ["--timeout", "0"],
        generate[:-1] + ["-1"],
        # serve (refused before a model is loaded)
        ["serve"], serve + ["--poll-interval", "0"], serve + ["--poll-interval", "-1"],
        serve + ["--max-batch-size", "-1"], serve + ["--workers", "0"],
        serve + ["--rest-timeout", "0"], serve + ["--rest-max-connections", "0"],
        serve + ["--port", "-5"], serve + ["--rest-port", "-2"], serve + ["--grace", "-1"],
        serve + ["--max-message-bytes", "0"],
        # evaluate
        evaluate, evaluate + ["--saved-model", f"{w}/missing"],
        evaluate + ["--saved-model", f"{w}/empty_model/1"],
        evaluate + ["--saved-model", f"{w}/x", "--server", "127.0.0.1:1"],
        evaluate + ["--saved-model", f"{w}/empty_model/1", "--batch-size", "0"],
        ["evaluate", "--data", f"{w}/missing", "--saved-model", f"{w}/empty_model/1"],
        evaluate + ["--server", "127.0.0.1:1"],
        # synth, preprocess, contact-sheet
        ["synth", "--out", out], ["synth", "bogus", "--out", out], synth + ["--clips", "0"],
        synth + ["--num-classes", "1"], synth + ["--clips", "abc"],
        ["preprocess", "--dataset", "gestures", "--raw", f"{w}/missing", "--out", out],
        ["preprocess", "--dataset", "gestures", "--raw", raw, "--out", f"{w}/nonempty"],
        preprocess + ["--workers", "0"], preprocess + ["--augment-copies", "0"],
        preprocess + ["--strides", "0"],
        ["contact-sheet", f"{w}/missing", "--out", f"{out}/sheet.png"],
        sheet + ["--clips", "0"], sheet + ["--step", "0"],
        # demo, pipeline
        ["demo", "--clips", "0", "--home", out], ["demo", "--num-classes", "1", "--home", out],
        ["demo", "--model", "nope", "--home", out],
        ["pipeline", "run", "--model-steps", "0"],
    ]


# Flags that take a count or a positive number, and values none of them can take.
BAD_VALUES = {"count": ["0", "-1", "-7", "2.5", "x", "", "nan", "1e3"],
              "count0": ["-1", "-3", "2.5", "x", ""],
              "positive": ["0", "-0.5", "nan", "inf", "x", ""]}


def _random_invocations(w, seed=35, draws=24):
    """Seeded draws of (command, numeric flag, bad value)."""
    d, out = f"{w}/data", f"{w}/new_out"
    commands = {
        "train": (["train", "--preset", "test", "--data", d, "--out", out],
                  {"--steps": "count", "--batch-size": "count", "--classifier-steps": "count0",
                   "--num-classes": "count"}),
        "compare": (["compare", "--data", d, "--models", "amc-gan", "--out", out],
                    {"--rows": "count", "--steps": "count", "--budget-minutes": "positive",
                     "--classifier-steps": "count"}),
        "generate": (["generate", "--motion", "0", "--out", f"{out}/v.gif"],
                     {"--fps": "count", "--timeout": "positive"}),
        "serve": (["serve", "--model-base-path", f"{w}/empty_model"],
                  {"--poll-interval": "positive", "--workers": "count",
                   "--max-batch-size": "count", "--rest-timeout": "positive",
                   "--rest-max-connections": "count", "--max-message-bytes": "count"}),
        "synth": (["synth", "gestures", "--out", out], {"--clips": "count"}),
        "preprocess": (["preprocess", "--dataset", "gestures", "--raw", f"{w}/raw", "--out",
                        out], {"--workers": "count", "--augment-copies": "count"}),
        "contact-sheet": (["contact-sheet", d, "--out", f"{out}/s.png"],
                          {"--step": "count", "--clips": "count"}),
        "evaluate": (["evaluate", "--data", d, "--saved-model", f"{w}/empty_model/1"],
                     {"--batch-size": "count"}),
    }
    rng = random.Random(seed)
    invocations = []
    for _ in range(draws):
        prefix, flags = commands[rng.choice(sorted(commands))]
        flag = rng.choice(sorted(flags))
        invocations.append(prefix + [flag, rng.choice(BAD_VALUES[flags[flag]])])
    return invocations


def _files(root):
    return sorted(os.path.join(top, name) for top, dirs, files in os.walk(root)
                  for name in files + dirs)


def _invoke(argv):
    """`amc-tf ARGV` in this process: (exit status, stderr is read by the caller)."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        if isinstance(e.code, str):       # what the interpreter does with it
            print(e.code, file=sys.stderr)
            return 1
        return e.code


def test_every_bad_invocation_fails_with_one_error_line_and_writes_nothing(work, capsys):
    invocations = _invocations(work) + _random_invocations(work)
    assert len(invocations) >= 100
    before = _files(work)
    problems = []
    for argv in invocations:
        start = time.monotonic()
        status = _invoke(argv)
        seconds = time.monotonic() - start
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if ERROR_LINE.match(line)]
        if not status or len(errors) != 1 or "Traceback" in err or seconds > TIME_BOUND_S:
            problems.append(f"amc-tf {' '.join(argv)}: exit {status}, {seconds:.1f} s, "
                            f"error lines {errors}, stderr tail {err[-600:]!r}")
        after = _files(work)
        if after != before:
            problems.append(f"amc-tf {' '.join(argv)} wrote {sorted(set(after) - set(before))} "
                            f"removed {sorted(set(before) - set(after))}")
            before = after
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("argv, expected", [
    (["evaluate", "--data", "{w}/data", "--saved-model", "{w}/empty_model/1"],
     "saved_model.pb is empty (0 bytes)"),
    (["evaluate", "--data", "{w}/data", "--saved-model", "{w}/missing"], "holds no saved_model.pb"),
    (["compare", "--data", "{w}/raw", "--out", "{w}/o"], "holds no summary.json"),
    (["compare", "--data", "{w}/data", "--out", "{w}/o", "--models", "g3an,g3an"],
     "names g3an more than once"),
    (["generate", "--motion", "0", "--out", "{w}/o/v.gif", "--server", "127.0.0.1:1",
      "--timeout", "2"], "no model server answers at 127.0.0.1:1"),
    (["train", "--data", "{w}/data", "--out", "{w}/earlier", "--preset", "test", "--no-resume"],
     "holds the checkpoints of an earlier run"),
    (["evaluate", "--data", "{w}/data", "--server", "127.0.0.1:1"],
     "the model server answered UNAVAILABLE"),
])
def test_error_lines_name_the_problem(work, capsys, argv, expected):
    assert _invoke([a.format(w=work) for a in argv])
    err = capsys.readouterr().err
    assert expected in err, err[-2000:]
