"""Apply each curated mutant (Python 3.11+: tomllib) to a temporary copy of the repository and run the tests it names.

    python tests/mutation/run_mutants.py                 # every mutant in tests/mutation/*.toml
    python tests/mutation/run_mutants.py --only ID ...   # some of them
    python tests/mutation/run_mutants.py --list

A mutant is *killed* when its tests fail on the mutated copy and *survives* when they pass. The
named tests are first run once unmutated: a mutant only counts if they pass without it. Exit
status 0 when every mutant is killed, 1 when one survives or cannot be applied.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
MUTANT_FILES = Path(__file__).resolve().parent
REQUIRED_FIELDS = ("id", "file", "find", "replace", "tests", "user_sees")


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]
    user_sees: str
    source: str


def load_mutants(folder: Path = MUTANT_FILES) -> list[Mutant]:
    """Every ``[[mutant]]`` of every ``*.toml`` in ``folder``; bad entries raise ValueError."""
    mutants, seen = [], set()
    for path in sorted(folder.glob("*.toml")):
        for index, entry in enumerate(tomllib.loads(path.read_text()).get("mutant", [])):
            missing = [f for f in REQUIRED_FIELDS if f not in entry]
            if missing:
                raise ValueError(f"{path.name} mutant #{index + 1}: missing {', '.join(missing)}")
            if entry["id"] in seen:
                raise ValueError(f"{path.name}: mutant id {entry['id']!r} is used twice")
            seen.add(entry["id"])
            mutants.append(Mutant(entry["id"], entry["file"], entry["find"], entry["replace"],
                                  tuple(entry["tests"]), entry["user_sees"], path.name))
    return mutants


def copy_repository(destination: Path) -> None:
    """The files git tracks plus untracked ones it does not ignore (the working tree as is)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def run_tests(copy: Path, tests: tuple[str, ...], timeout: int) -> tuple[int, float, str]:
    """(exit status, seconds, last output lines) of the default-suite tests run in ``copy``."""
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-m", "not slow", "-q", "-x",
               "-p", "no:cacheprovider", *tests]
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, time.monotonic() - start, "timed out"
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-3:])
    return done.returncode, time.monotonic() - start, tail


def check_imports_from(copy: Path) -> None:
    """The copy's packages, not the installed checkout, must be the ones under test."""
    env = dict(os.environ, PYTHONPATH=str(copy))
    found = subprocess.run([sys.executable, "-c", "import mrcnn, unet, localization; "
                            "print(mrcnn.__file__, unet.__file__, localization.__file__)"],
                           cwd=copy, env=env, capture_output=True, text=True, check=True).stdout
    if any(not Path(p).is_relative_to(copy) for p in found.split()):
        raise RuntimeError(f"the copy imports packages from outside it: {found}")


def apply(copy: Path, mutant: Mutant) -> str:
    """Write the mutated file into ``copy``; return the original text (to restore)."""
    path = copy / mutant.file
    if not path.is_file():
        raise ValueError(f"{mutant.id}: {mutant.file} does not exist")
    text = path.read_text()
    count = text.count(mutant.find)
    if count != 1:
        raise ValueError(f"{mutant.id}: 'find' occurs {count} times in {mutant.file}, expected 1")
    path.write_text(text.replace(mutant.find, mutant.replace))
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="ID", help="run these mutants only")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per test run")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    mutants = load_mutants()
    if args.only:
        unknown = set(args.only) - {m.id for m in mutants}
        if unknown:
            parser.error(f"unknown mutant ids: {', '.join(sorted(unknown))}")
        mutants = [m for m in mutants if m.id in args.only]
    if args.list:
        for m in mutants:
            print(f"{m.id:40s} {m.file:42s} {m.user_sees}")
        return 0

    results = []
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        copy = Path(tmp)
        copy_repository(copy)
        check_imports_from(copy)
        baseline = tuple(sorted({t for m in mutants for t in m.tests}))
        status, seconds, tail = run_tests(copy, baseline, args.timeout)
        print(f"unmutated: {len(baseline)} test paths, {seconds:.0f} s, exit {status}", flush=True)
        if status != 0:
            print(tail)
            print("the named tests fail without any mutant: fix them first")
            return 1
        for index, mutant in enumerate(mutants, 1):
            try:
                original = apply(copy, mutant)
            except ValueError as error:
                results.append({"id": mutant.id, "outcome": "not applied", "why": str(error)})
                print(f"[{index}/{len(mutants)}] NOT APPLIED {error}", flush=True)
                continue
            try:
                status, seconds, tail = run_tests(copy, mutant.tests, args.timeout)
            finally:
                (copy / mutant.file).write_text(original)
            outcome = "survived" if status == 0 else "killed"
            results.append({"id": mutant.id, "outcome": outcome, "seconds": round(seconds, 1),
                            "tests": list(mutant.tests), "user_sees": mutant.user_sees,
                            "last_lines": tail})
            print(f"[{index}/{len(mutants)}] {outcome.upper():8s} {mutant.id} ({seconds:.0f} s)",
                  flush=True)

    killed = sum(r["outcome"] == "killed" for r in results)
    print(f"\n{killed} killed, {len(results) - killed} not killed, of {len(results)} mutants")
    for r in results:
        if r["outcome"] != "killed":
            print(f"  {r['outcome']}: {r['id']}: {r.get('user_sees', r.get('why'))}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
