# The two commands a newcomer needs: `make demo` (set up if needed, run the main job) and `make test`.
SHELL := /bin/bash
VENV := .venv
export TF_CPP_MIN_LOG_LEVEL ?= 2
# oneDNN CPU kernels (amc_tf sets this too, but only when imported before TensorFlow).
export TF_ENABLE_ONEDNN_OPTS ?= 1
export PYTHONUNBUFFERED := 1

.PHONY: setup demo test test-fast lock clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/amc-tf demo

# CI sets CI=true, which also runs tests marked `slow` (see tests/conftest.py). Two lanes of a
# few pytest processes (scripts/test.sh and docs/testing.md say why).
test: setup
	bash scripts/test.sh

test-fast: setup
	bash scripts/test.sh -m "not slow"

lock:
	bash requirements/lock.sh

clean:
	rm -rf $(VENV) .pytest_cache
