"""Benchmark cases run one per fresh interpreter (each its own peak RSS), reported as a table."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable


def run_cases(names: Iterable[str], command_for: Callable[[str], list[str]],
              width: int = 40) -> dict[str, dict]:
    """Run ``command_for(name)`` for each case; each prints its JSON (``median_s``, ``times_s``,
    ``peak_rss_mib``, ...) on its last line. Prints one table row per case as it finishes;
    a failing case is reported on stderr and left out."""
    results = {}
    print(f"{'case':<{width}}{'median':>10}   {'min-max':<15}{'peak RSS':>10}")
    for name in names:
        done = subprocess.run(command_for(name), capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{name}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        results[name] = case = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name:<{width}}{case['median_s']:>8.3f} s   {min(case['times_s']):.3f}-"
              f"{max(case['times_s']):.3f} s{case['peak_rss_mib']:>8} MiB", flush=True)
    return results
