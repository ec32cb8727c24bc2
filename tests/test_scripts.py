"""The test run's closing report (scripts/test_report.py): counts by outcome, the slowest tests,
peak memory and the CPU in use, from JUnit XML and test.sh's samples."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.test_a" name="test_fast" time="1.5"/>
<testcase classname="tests.test_a" name="test_slow" time="90.25"/>
<testcase classname="tests.test_a" name="test_broken" time="3.0"><failure message="x"/></testcase>
<testcase classname="tests.test_b" name="test_off" time="0.0">
  <skipped type="pytest.skip" message="slow"/></testcase>
<testcase classname="tests.test_b" name="test_known" time="2.0">
  <skipped type="pytest.xfail" message="known"/></testcase>
</testsuite></testsuites>
"""


def test_report_counts_slowest_memory_and_cpu(tmp_path):
    (tmp_path / "lane-1.xml").write_text(JUNIT)
    # used MiB, then /proc/stat's busy and total jiffies: 150 busy of 200 between first and last.
    (tmp_path / "memory.log").write_text("100 2048 1000 2000\n105 8192 1100 2100\n"
                                         "110 4096 1150 2200\n")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "test_report.py"),
                           str(tmp_path), "125", str(tmp_path / "memory.log"), "--slowest", "2"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr                # one test failed
    lines = proc.stdout.splitlines()
    assert lines[0] == "[test] wall time 125 s (2.1 min), 5 tests"
    assert "peak memory in use 8.0 GiB (8192 MiB; `free -m` sampled 3 times)" in lines[1]
    cores = os.cpu_count()
    assert lines[2] == (f"[test] CPU busy 75% of the time on average "
                        f"({0.75 * cores:.2f} of {cores} cores)")
    assert "90.2 s  tests.test_a::test_slow" in lines[4]
    assert lines[5].endswith("tests.test_a::test_broken  (failed)")
    assert lines[-1] == "test: 2 passed, 1 failed, 2 skipped"


def test_report_reads_memory_only_samples_and_passes_without_failures(tmp_path):
    (tmp_path / "lane-1.xml").write_text(JUNIT.replace('<failure message="x"/>', ""))
    (tmp_path / "memory.log").write_text("100 1024\n105 3072\n")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "test_report.py"),
                           str(tmp_path), "60", str(tmp_path / "memory.log")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "peak memory in use 3.0 GiB" in proc.stdout
    assert "CPU busy" not in proc.stdout
    assert proc.stdout.splitlines()[-1] == "test: 3 passed, 0 failed, 2 skipped"
