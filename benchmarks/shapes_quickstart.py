"""Wall time and mAP of the shapes quickstart (train from scratch on CPU, then evaluate).

    python benchmarks/shapes_quickstart.py [--threads 2] [--set KEY=VALUE ...]

Runs exactly the commands a user runs (``samples/shapes.py train`` then ``evaluate``) as
subprocesses, times them, prints a table and writes ``benchmarks/results/shapes_quickstart.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import provenance, write_report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "shapes_quickstart.json"


def run_timed(command: list[str], env: dict[str, str], log: Path) -> float:
    """Run ``command``, streaming its output to ``log``; returns the wall time in seconds."""
    start = time.perf_counter()
    with log.open("w") as handle:
        subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra/inter-op threads")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra Config overrides passed to both commands")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(args.threads),
               TF_NUM_INTEROP_THREADS=str(args.threads), TF_CPP_MIN_LOG_LEVEL="2")
    overrides = [flag for item in args.set for flag in ("--set", item)]
    script = str(ROOT / "samples" / "shapes.py")
    with tempfile.TemporaryDirectory() as logs:
        logs_path = Path(logs)
        metrics_path = logs_path / "metrics.json"
        load_before = os.getloadavg()
        train_s = run_timed([sys.executable, script, "train", "--weights", "none", "--logs", logs,
                             *overrides], env, logs_path / "train.log")
        eval_s = run_timed([sys.executable, script, "evaluate", "--weights", "last", "--logs",
                            logs, "--out", str(metrics_path), *overrides], env,
                           logs_path / "evaluate.log")
        metrics = json.loads(metrics_path.read_text())
        load_after = os.getloadavg()

    result = {
        "benchmark": "shapes_quickstart",
        "train_wall_s": round(train_s, 1),
        "evaluate_wall_s": round(eval_s, 1),
        "mAP50": round(metrics["mAP50"], 4),
        "mAP": round(metrics["mAP"], 4),
        "coco_segm_AP": round(metrics["segm"]["AP"], 4),
        "val_images": metrics["images"],
        "overrides": args.set,
        "threads": args.threads,
        "machine": {**provenance(), "loadavg_before": load_before, "loadavg_after": load_after},
    }
    print(f"{'train wall (s)':<22}{result['train_wall_s']:>10}")
    print(f"{'evaluate wall (s)':<22}{result['evaluate_wall_s']:>10}")
    print(f"{'mAP@0.5 (val)':<22}{result['mAP50']:>10}")
    print(f"{'mAP@[.5:.95] (val)':<22}{result['mAP']:>10}")
    print(f"{'COCO segm AP':<22}{result['coco_segm_AP']:>10}")
    write_report(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
