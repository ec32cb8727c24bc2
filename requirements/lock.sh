#!/usr/bin/env bash
# Re-resolves requirements/lock.txt from requirements.in + overrides.txt (run after changing either).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/uv pip compile requirements/requirements.in --override requirements/overrides.txt \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements/lock.txt
