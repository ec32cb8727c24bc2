#!/usr/bin/env bash
# The test suite, one pytest process per test file (arguments go to each pytest): TensorFlow,
# Keras and the in-process TFX / Beam / TFMA runs keep memory that only the process's exit gives
# back, and the whole suite in one process grew to 21.4 GiB of the 24 GiB CI machine (killed by
# the OOM killer on 2026-12-01). A file's module-scoped fixtures are shared within it as before.
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
failed=()
files=(tests/test_*.py)
start=$SECONDS
for file in "${files[@]}"; do
  echo "[test] $file"
  "$python" -m pytest "$file" "$@"
  status=$?
  # 5: nothing collected in this file (a -k or -m filter that matches none of its tests).
  if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then failed+=("$file (exit $status)"); fi
done
echo "[test] ${#files[@]} files in $((SECONDS - start)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  printf '[test] FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "[test] every file passed"
