"""The test run's closing report (scripts/test.sh prints it; so every CI log has it): wall time,
the test count by outcome, the ten slowest tests and the peak memory sampled during the run.

usage: test_report.py JUNIT_DIR WALL_S [MEMORY_LOG] [--slowest N]
JUNIT_DIR holds one JUnit XML file per pytest process; MEMORY_LOG one sample a line, as
scripts/test.sh writes it: "<epoch s> <`free -m`'s used MiB> <busy jiffies> <total jiffies>"
(/proc/stat's "cpu" line: every CPU together).
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


def read_samples(memory_log):
    """[(used MiB, busy jiffies or None, total jiffies or None)] of MEMORY_LOG; [] if absent."""
    samples = []
    try:
        with open(memory_log) as f:
            for line in f:
                fields = line.split()
                if len(fields) == 4:
                    samples.append((int(fields[1]), int(fields[2]), int(fields[3])))
                elif len(fields) == 2:
                    samples.append((int(fields[1]), None, None))
    except (OSError, ValueError):
        return []
    return samples


def cpu_busy_fraction(samples):
    """The share of all CPUs' time that was busy between the first and last sample."""
    cpu = [(busy, total) for _, busy, total in samples if busy is not None]
    if len(cpu) < 2 or cpu[-1][1] <= cpu[0][1]:
        return None
    return (cpu[-1][0] - cpu[0][0]) / (cpu[-1][1] - cpu[0][1])


def report(junit_dir, wall_s, memory_log=None, slowest=10):
    cases = read_cases(junit_dir)
    counts = {k: sum(1 for c in cases if c[2] == k)
              for k in ("passed", "failed", "skipped", "xfailed")}
    lines = [f"[test] wall time {wall_s:.0f} s ({wall_s / 60:.1f} min), {len(cases)} tests"]
    samples = read_samples(memory_log) if memory_log else []
    if samples:
        peak = max(used for used, _, _ in samples)
        lines.append(f"[test] peak memory in use {peak / 1024:.1f} GiB ({peak} MiB; "
                     f"`free -m` sampled {len(samples)} times)")
        busy = cpu_busy_fraction(samples)
        if busy is not None:
            cores = os.cpu_count() or 1
            lines.append(f"[test] CPU busy {busy:.0%} of the time on average "
                         f"({busy * cores:.2f} of {cores} cores)")
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
