"""The test run's closing report (scripts/test.sh prints it; so every CI log has it): wall time,
the test count by outcome, the ten slowest tests and the peak memory sampled during the run.

usage: test_report.py JUNIT_DIR WALL_S [MEMORY_LOG] [--slowest N]
JUNIT_DIR holds one JUnit XML file per pytest process; MEMORY_LOG is `free -m`'s used MiB,
one sample a line ("<epoch s> <MiB>"), as scripts/test.sh writes it.
"""

import argparse
import glob
import os
import sys
import xml.etree.ElementTree as ET


def read_cases(junit_dir):
    """[(test id, seconds, outcome)] of every test case in JUNIT_DIR/*.xml. The time of a case
    is its setup + call + teardown, as pytest writes it."""
    cases = []
    for path in sorted(glob.glob(os.path.join(junit_dir, "*.xml"))):
        for case in ET.parse(path).getroot().iter("testcase"):
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            outcome = "passed"
            for child in case:
                if child.tag in ("failure", "error"):
                    outcome = "failed"
                elif child.tag == "skipped":
                    outcome = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
            cases.append((name, float(case.get("time", 0.0)), outcome))
    return cases


def peak_memory_mib(memory_log):
    try:
        with open(memory_log) as f:
            samples = [int(line.split()[1]) for line in f if len(line.split()) == 2]
    except (OSError, ValueError):
        return None, 0
    return (max(samples) if samples else None), len(samples)


def report(junit_dir, wall_s, memory_log=None, slowest=10):
    cases = read_cases(junit_dir)
    counts = {k: sum(1 for c in cases if c[2] == k)
              for k in ("passed", "failed", "skipped", "xfailed")}
    lines = [f"[test] wall time {wall_s:.0f} s ({wall_s / 60:.1f} min), {len(cases)} tests"]
    if memory_log:
        peak, n = peak_memory_mib(memory_log)
        if peak is not None:
            lines.append(f"[test] peak memory in use {peak / 1024:.1f} GiB ({peak} MiB; "
                         f"`free -m` sampled {n} times)")
    lines.append(f"[test] the {min(slowest, len(cases))} slowest (setup + call + teardown):")
    for name, seconds, outcome in sorted(cases, key=lambda c: -c[1])[:slowest]:
        lines.append(f"[test] {seconds:8.1f} s  {name}" + ("" if outcome == "passed"
                                                           else f"  ({outcome})"))
    # The plain closing line (skipped counts the expected failures too).
    lines.append(f"test: {counts['passed']} passed, {counts['failed']} failed, "
                 f"{counts['skipped'] + counts['xfailed']} skipped")
    return "\n".join(lines), counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit_dir")
    parser.add_argument("wall_s", type=float)
    parser.add_argument("memory_log", nargs="?")
    parser.add_argument("--slowest", type=int, default=10)
    args = parser.parse_args(argv)
    text, counts = report(args.junit_dir, args.wall_s, args.memory_log, args.slowest)
    print(text)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
