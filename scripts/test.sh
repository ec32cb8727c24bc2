#!/usr/bin/env bash
# The test suite in two lanes that run side by side, each a few pytest processes one after
# another (arguments go to each pytest). Why (docs/testing.md): a pytest process pays ~15 s of
# imports (TensorFlow, TFX, Beam, TFMA), so a handful of processes, not one per file; one lane
# keeps about one core busy (tracing, TFX and Beam are Python), so two lanes on the two cores (a
# third made the run no shorter and its peak memory 13.4 GiB). Lane "sub" holds the tests whose
# work runs in subprocesses (demos, pipeline, workers, servers), the light files and the
# compare; lane "main" the families' and the training files, the paper-size steps included, so
# that two of those never run at once. The split balances the lanes' measured times.
# At the end: wall time, test count, peak memory, how busy the CPUs were, the ten slowest tests.
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/amc_tests.XXXXXX")

# A lane: its name, then one pytest process per "|"-separated entry, run in order.
lanes=(
  "sub tests/test_demo.py tests/test_pipeline.py tests/test_stack.py
   | tests/test_multi_worker.py tests/test_jax_step.py
   tests/test_keypoint_judge.py tests/test_data_gestures.py tests/test_data_faces.py
   tests/test_data_hardening.py tests/test_datasets.py tests/test_inputs.py
   tests/test_metrics.py tests/test_evaluation.py tests/test_layers.py tests/test_scripts.py
   tests/test_cli_fuzz.py
   | tests/test_serving.py tests/test_serving_hardening.py tests/test_compare.py
   tests/test_training_guards.py"
  "main tests/test_model.py tests/test_model_mirrored.py tests/test_imaginator.py
   tests/test_g3an.py tests/test_twostreamvan.py
   | tests/test_training.py tests/test_benchmarks.py"
)

# Every test file runs: one that no lane names gets a process of its own at the end of the
# last lane.
declare -A listed
for lane in "${lanes[@]}"; do
  for file in $lane; do listed[$file]=1; done
done
for file in tests/test_*.py; do
  if [ -z "${listed[$file]:-}" ]; then
    echo "[test] $file is in no lane: it runs on its own at the end of the last lane"
    lanes[-1]+=" | $file"
  fi
done

run_lane() {   # LANE: "NAME FILES | FILES ..."; returns the number of its processes that failed
  local name entries failed=0 n=0
  read -r name rest <<< "$(echo $1)"
  IFS='|' read -ra entries <<< "$rest"
  for entry in "${entries[@]}"; do
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
# The project's modules compiled once: where PYTHONDONTWRITEBYTECODE is set every process (the
# pytest processes and their ~40 subprocesses) would compile them again (the installed packages
# are compiled by scripts/setup.sh).
"$python" -m compileall -q amc_app amc_tf pipeline serving benchmarks > /dev/null
# Every 5 s: the time, `free -m`'s used MiB and /proc/stat's busy and total CPU jiffies.
( while sleep 5; do
    echo "$(date +%s) $(free -m | awk '/^Mem:/{print $3}')" \
         "$(awk '/^cpu /{busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, busy + $5 + $6}' \
            /proc/stat)"
  done ) > "$run_dir/memory.log" &
sampler=$!
start=$SECONDS
pids=()
for lane in "${lanes[@]}"; do
  run_lane "$lane" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do
  wait "$pid"
  failed=$((failed + $?))
done
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
if [ "$failed" -ne 0 ]; then
  echo "[test] FAILED: $failed pytest process(es)"
  status=1
fi
# Last, so that the log ends on the count ("test: N passed, N failed, N skipped").
"$python" scripts/test_report.py "$run_dir" "$wall" "$run_dir/memory.log" || status=1
exit "$status"
