#!/usr/bin/env bash
# The test suite in two lanes that run side by side, each a few pytest processes one after
# another (arguments go to each pytest). Why (docs/testing.md): a pytest process pays ~15 s of
# imports (TensorFlow, TFX, Beam, TFMA), so a handful of processes, not one per file; the suite
# keeps one core busy on average (tracing, TFX and Beam are Python), so two lanes; lane "sub"
# holds the tests whose work runs in subprocesses (demos, pipeline, workers, servers) and the
# light files, lane "main" the in-process training, the paper-size steps included, so that two of
# those never run at once. The split balances the lanes' measured times (docs/testing.md).
# At the end: wall time, test count, the ten slowest tests and the peak memory in use.
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/amc_tests.XXXXXX")

# One pytest process per entry; a lane runs its entries in order.
lane_sub=(
  "tests/test_demo.py tests/test_pipeline.py tests/test_stack.py"
  "tests/test_multi_worker.py tests/test_jax_step.py tests/test_model_mirrored.py
   tests/test_keypoint_judge.py tests/test_data_gestures.py tests/test_data_faces.py
   tests/test_data_hardening.py tests/test_datasets.py tests/test_inputs.py
   tests/test_metrics.py tests/test_evaluation.py tests/test_layers.py"
  "tests/test_serving.py tests/test_serving_hardening.py"
)
lane_main=(
  "tests/test_model.py tests/test_imaginator.py tests/test_g3an.py tests/test_twostreamvan.py"
  "tests/test_training.py tests/test_training_guards.py tests/test_compare.py
   tests/test_benchmarks.py"
)

# Every test file runs: one that no entry names gets a process of its own at the end of "main".
declare -A listed
# shellcheck disable=SC2048
for file in ${lane_sub[*]} ${lane_main[*]}; do listed[$file]=1; done
for file in tests/test_*.py; do
  if [ -z "${listed[$file]:-}" ]; then
    echo "[test] $file is in no lane: it runs on its own at the end of lane main"
    lane_main+=("$file")
  fi
done

run_lane() {   # NAME ENTRIES...: each entry one pytest process; returns the number that failed
  local name=$1 failed=0 n=0
  shift
  for entry in "$@"; do
    n=$((n + 1))
    # shellcheck disable=SC2086
    "$python" -m pytest $entry --junitxml="$run_dir/$name-$n.xml" \
      --basetemp="$run_dir/tmp-$name-$n" -p no:cacheprovider "${args[@]}" \
      > "$run_dir/$name-$n.log" 2>&1
    status=$?
    # 5: nothing collected (a -k or -m filter that matches none of its tests).
    if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then
      failed=$((failed + 1))
      echo "$run_dir/$name-$n.log" >> "$run_dir/failed_logs"
    fi
    echo "[test] lane $name, process $n (exit $status): $(tail -n 1 "$run_dir/$name-$n.log")"
  done
  return "$failed"
}

args=("$@")
( while sleep 5; do echo "$(date +%s) $(free -m | awk '/^Mem:/{print $3}')"; done ) \
  > "$run_dir/memory.log" &
sampler=$!
start=$SECONDS
run_lane sub "${lane_sub[@]}" &
sub=$!
run_lane main "${lane_main[@]}"
main_failed=$?
wait "$sub"
sub_failed=$?
kill "$sampler" 2>/dev/null
wall=$((SECONDS - start))

# The failing processes' output, whole; the others' is in $run_dir.
if [ -f "$run_dir/failed_logs" ]; then
  while read -r log; do
    echo "[test] ---- $log"
    cat "$log"
  done < "$run_dir/failed_logs"
fi
echo "[test] logs and JUnit XML: $run_dir"
status=0
if [ "$main_failed" -ne 0 ] || [ "$sub_failed" -ne 0 ]; then
  echo "[test] FAILED: $main_failed process(es) of lane main, $sub_failed of lane sub"
  status=1
fi
# Last, so that the log ends on the count ("test: N passed, N failed, N skipped").
"$python" scripts/test_report.py "$run_dir" "$wall" "$run_dir/memory.log" || status=1
exit "$status"
