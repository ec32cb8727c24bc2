"""Shared pytest setup: `slow` tests run in CI (CI=true) or with --runslow; one process runs many
test files (scripts/test.sh), so each file's end gives its memory back; the memory each test
leaves behind is logged where AMC_TEST_MEMORY_LOG names a file (docs/testing.md)."""
import ctypes
import gc
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# As amc_tf/__init__.py sets it, before any test file imports TensorFlow first.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# oneDNN's own CPU allocator is a pool that keeps its high-water mark until the process exits
# (7.7 GiB after one paper-natops step, docs/testing.md); the system allocator gives it back.
# Tests only: the pool is ~10 % faster per paper-size step, which the product keeps.
os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")

import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        for item in items:
            marker = item.get_closest_marker("subset_of_slow")
            if marker:
                item.add_marker(pytest.mark.skip(
                    reason=f"{marker.args[0]} (slow) makes the same checks and more"))
        return
    skip_slow = pytest.mark.skip(reason="slow: runs in CI (CI=true) or with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


def pytest_collection_finish(session):
    """The two-replica checks the selected, not skipped tests ask for (`two_replicas` marker),
    run together in one process by `two_replica_results`."""
    checks = []
    for item in session.items:
        marker = item.get_closest_marker("two_replicas")
        if marker and not item.get_closest_marker("skip"):
            spec = [marker.args[0], marker.kwargs]
            if spec not in checks:
                checks.append(spec)
    session.config.two_replica_checks = checks


@pytest.fixture(scope="session")
def two_replica_results(request):
    """{check key: result} of every two-replica check this pytest process selected, from one
    subprocess (tests/two_replicas.py)."""
    import json
    import subprocess
    checks = request.config.two_replica_checks
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, os.path.join(root, "tests", "two_replicas.py"),
                           json.dumps(checks)], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600 * len(checks))
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("CHECK "):
            result = json.loads(line[len("CHECK "):])
            results[result["key"]] = result
    assert len(results) == len(checks), \
        f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return results


@pytest.fixture
def two_replicas(request, two_replica_results):
    """The figures of the two-replica check this test's `two_replicas` marker names (it
    passed: a failed check fails the test with its traceback)."""
    import two_replicas
    marker = request.node.get_closest_marker("two_replicas")
    result = two_replica_results[two_replicas.check_key(marker.args[0], marker.kwargs)]
    assert result["ok"], result["log"]
    print(result["figures"])
    return result["figures"]


def _rss_mib():
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["VmRSS"].split()[0]) >> 10, int(fields["VmHWM"].split()[0]) >> 10


def _release_memory():
    """What a finished test file leaves: Keras's global state, unreachable models and graphs
    (reference cycles), and the C heap's free pages (glibc keeps them otherwise)."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session(free_memory=True)
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):      # not glibc
        pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    yield
    if nextitem is None or nextitem.module is not item.module:
        _release_memory()
    path = os.environ.get("AMC_TEST_MEMORY_LOG")
    if path:
        rss, hwm = _rss_mib()
        with open(path, "a") as f:
            f.write(f"{rss} {hwm} {item.nodeid}\n")
