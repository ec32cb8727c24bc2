#!/usr/bin/env bash
# Builds .venv from nothing (Python 3.11 + the locked TFX 1.21 / TF 2.21 / Keras 3 stack + amc_tf).
# Re-running on a ready machine checks a stamp and returns in about a second, changing nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${AMC_VENV:-.venv}
PY=${PYTHON:-python3.11}
UV_VERSION=0.13.8

# Everything that decides what is installed goes into the stamp.
stamp_src=$(cat requirements/lock.txt setup.py compat/amc_tfdv_compat/setup.py \
  compat/amc_tfdv_compat/amc_tfdv_compat/*.py compat/amc_tfdv_compat/*.pth scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$VENV/.amc_stamp" ] && [ "$(cat "$VENV/.amc_stamp")" = "$stamp_src" ]; then
  exit 0
fi

echo "[setup] building $VENV (one-time, a few minutes on a fresh machine)"
command -v "$PY" >/dev/null || { echo "[setup] $PY not found: Python 3.11 is required" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
UV="$VENV/bin/uv"
export UV_PYTHON="$VENV/bin/python" UV_LINK_MODE=copy

# The lock is the full resolved set (uv pip compile with requirements/overrides.txt), so install it
# exactly and without re-resolving: the overrides make tfx's own pins unsatisfiable by design.
# --compile-bytecode: every module's .pyc written once here. Where PYTHONDONTWRITEBYTECODE is set
# (these machines) Python would otherwise compile TensorFlow, TFX and Beam from source in every
# process: `import tensorflow` took 14.7 s of CPU without the .pyc files, 5.8 s with them.
"$UV" pip install --no-deps --compile-bytecode -r requirements/lock.txt
# Lets TFDV 1.16.1 import under tfx-bsl 1.21 (see compat/amc_tfdv_compat/README.md).
"$UV" pip install --no-deps --no-build-isolation ./compat/amc_tfdv_compat
"$UV" pip install --no-deps --no-build-isolation -e .

"$VENV/bin/python" -c "import tensorflow_data_validation, tfx.v1, amc_tf" \
  || { echo "[setup] import check failed" >&2; exit 1; }
echo "$stamp_src" > "$VENV/.amc_stamp"
echo "[setup] done: $VENV"
