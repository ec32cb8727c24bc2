"""Shared pytest setup: `slow` tests run in CI (CI=true) or with --runslow."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# As amc_tf/__init__.py sets it, before any test file imports TensorFlow first.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return
    skip_slow = pytest.mark.skip(reason="slow: runs in CI (CI=true) or with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)
