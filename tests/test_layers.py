"""The house's layers, one way only: amc_tf (the core library) < serving (export, server, client) <
pipeline (its Trainer exports for serving) < amc_app (the CLI and the demo). No module imports a
layer above its own, at module level or inside a function, and no two modules import each other,
directly or around a cycle."""

import ast
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("amc_tf", "pipeline", "serving", "amc_app")
# What each package may import of the others (amc_app is the top: the CLI and the demo).
ALLOWED = {"amc_tf": {"amc_tf"}, "serving": {"amc_tf", "serving"},
           "pipeline": {"amc_tf", "serving", "pipeline"}, "amc_app": set(PACKAGES)}


def _modules():
    mods = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    mods[module.removesuffix(".__init__")] = path
    return mods


def _imports(mods):
    """module -> the project modules it imports, every import statement counted (relative ones
    resolved; `from pkg import name` counts pkg.name when that is a module)."""
    def resolve(target):
        parts = target.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in mods:
                return ".".join(parts[:i])
        return None

    edges = {}
    for module, path in mods.items():
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets.add(base)
                targets.update(f"{base}.{a.name}" for a in node.names)
        found = {resolve(t) for t in targets} - {None, module}
        # A module importing its own package's __init__ (or a parent package) is not an edge.
        edges[module] = {t for t in found if not module.startswith(t + ".")}
    return edges


def test_layers_import_one_way():
    edges = _imports(_modules())
    upward = sorted(f"{m} -> {t}" for m, targets in edges.items() for t in targets
                    if t.split(".")[0] not in ALLOWED[m.split(".")[0]])
    assert not upward, "imports against the layering:\n" + "\n".join(upward)


def test_no_import_cycles():
    edges = _imports(_modules())
    cycles, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("source", ["import pipeline.configs", "from serving import export",
                                    "from ..pipeline import configs"])
def test_the_check_sees_upward_imports_inside_functions(tmp_path, monkeypatch, source):
    """The guard itself: an import hidden in a function body of the core is found."""
    core = tmp_path / "amc_tf"
    core.mkdir()
    (core / "__init__.py").write_text("")
    (core / "late.py").write_text(f"def f():\n    {source}\n")
    for package in ("pipeline", "serving", "amc_app"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "configs.py").write_text("")
        (tmp_path / package / "export.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", str(tmp_path))
    edges = _imports(_modules())
    assert edges["amc_tf.late"] & {"pipeline.configs", "serving.export", "pipeline", "serving"}


GENERATION = r"""
import importlib, json, sys
import numpy as np
from amc_tf import inference
from amc_tf.models import get_family
appearance = np.full((1, 64, 64, 3), 9, np.uint8)
for name in ("amc-gan", "imaginator", "twostreamvan", "g3an"):
    family = get_family(name)
    config = family.config("test", num_classes=3)
    velocity = np.zeros((1, config.num_frames - 1, config.velocity_dim), np.float32) \
        if family.uses_velocity else None
    generator = importlib.import_module(family.networks_module).build_generator(config)
    for g in (generator, None):
        if g is None:                       # the saved generator, as serving loads it
            generator.save(f"{sys.argv[1]}/{name}.keras")
            g = family.load_generator(f"{sys.argv[1]}/{name}.keras")
        video = inference.generate(family, g, config, appearance, 1, seed=3, velocity=velocity)
        assert video.shape == (1, config.num_frames, 64, 64, 3), video.shape
print(json.dumps(sorted(m for m in sys.modules if m.startswith("amc_tf"))))
"""


def test_generation_imports_no_training_code(tmp_path):
    """What generates a video (a family's generator built, saved and loaded, `family.generate`,
    `amc_tf.inference.generate`) imports no discriminator, loss, train-step or training module:
    serving's Python path does not drag the training code in (issue 36)."""
    import json
    import subprocess
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", GENERATION, str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    imported = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "amc_tf.models.amc_gan.generator" in imported        # the check saw the families
    training = [m for m in imported if m.endswith((".model", "discriminators", ".losses"))
                or m.startswith("amc_tf.training")]
    assert not training, training


def test_model_families_doc_lists_the_registry():
    """docs/model_families.md's table of families is the registry's: every family, its folder,
    presets, ablations and inputs (a family added without its row fails here)."""
    from amc_tf.models import family_names, get_family
    with open(os.path.join(ROOT, "docs", "model_families.md")) as f:
        doc = f.read()
    rows = [line for line in doc.splitlines() if line.startswith("| `")]
    expected = []
    for name in family_names():
        family = get_family(name)
        folder = family.__module__.split(".")[2]
        yes = lambda flag: "yes" if flag else "no"
        expected.append(f"| `{name}` | `amc_tf/models/{folder}/` | {', '.join(family.presets)} | "
                        f"{', '.join(family.ablations)} | {yes(family.uses_appearance)} | "
                        f"{yes(family.uses_velocity)} |")
    assert rows == expected, "\n".join(rows + ["expected:"] + expected)
