"""The package layout: old import paths keep working, dependencies point one way, no cycles."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

MRCNN = Path(__file__).resolve().parents[2] / "mrcnn"

# Which subpackages each may import (besides itself); the leaf facade modules config and
# visualize may be imported from anywhere they are named here.
ALLOWED = {
    "geometry": set(),
    "data": {"geometry", "config"},
    "modeling": {"geometry", "config"},
    "evaluation": {"geometry", "data", "config"},
    "engine": {"geometry", "data", "modeling", "evaluation", "config", "visualize"},
    "export": {"geometry", "modeling", "config"},
}


def _imports(path: Path) -> list[str]:
    """Every ``mrcnn...`` module a file imports, at module level or inside functions."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mrcnn"):
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names if a.name.startswith("mrcnn"))
    return names


def _module_name(path: Path) -> str:
    parts = path.relative_to(MRCNN.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("group", sorted(ALLOWED))
def test_each_subpackage_imports_only_what_its_docstring_allows(group):
    """A reader can trust the arrows in the README: no data -> modeling shortcut, no engine
    import from modeling, no way back from a subpackage to the facade's model.py."""
    wrong = []
    for path in sorted((MRCNN / group).rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            target = parts[1] if len(parts) > 1 else "mrcnn"
            if target != group and target not in ALLOWED[group] and (MRCNN / target).exists():
                wrong.append(f"{path.relative_to(MRCNN)} imports {name}")
            if target in {"model", "utils", "cli"}:
                wrong.append(f"{path.relative_to(MRCNN)} imports the facade module {name}")
    assert not wrong, wrong


def test_no_module_level_import_cycles_in_mrcnn():
    """Import cycles make the import order matter (the old dataset <-> image_io pair did)."""
    modules = {_module_name(p): p for p in MRCNN.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        deps = set()
        for node in tree.body:  # module level only: lazy imports inside functions cannot cycle
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mrcnn"):
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("mrcnn"))
        graph[name] = {d for d in deps if d in modules and d != name}

    def cycle_from(start, node, seen):
        for dep in graph[node]:
            if dep == start:
                return [node, dep]
            if dep not in seen:
                seen.add(dep)
                found = cycle_from(start, dep, seen)
                if found:
                    return [node, *found]
        return None

    cycles = [c for m in graph if (c := cycle_from(m, m, {m}))]
    assert not cycles, cycles[0]


def test_top_level_of_mrcnn_is_the_public_face_only():
    """Opening mrcnn/ shows Matterport's modules and the CLI; internals sit in named rooms."""
    modules = {p.stem for p in MRCNN.glob("*.py")} - {"__init__"}
    packages = {p.name for p in MRCNN.iterdir() if (p / "__init__.py").exists()}
    assert modules == {"config", "model", "utils", "visualize", "parallel_model", "cli"}
    assert packages == set(ALLOWED)


OLD_PATHS = [  # paths the 0.1.0 README showed -> the object they must still give
    ("mrcnn.datasets.coco", "CocoDataset", "mrcnn.data.datasets.coco"),
    ("mrcnn.dataset", "Dataset", "mrcnn.data.dataset"),
    ("mrcnn.pretrained", "load_pretrained", "mrcnn.engine.pretrained"),
    ("mrcnn.callbacks", "MeanAPCallback", "mrcnn.engine.callbacks"),
    ("mrcnn.evaluator", "evaluate_dataset", "mrcnn.evaluation.evaluate"),
    ("mrcnn.coco_eval", "evaluate_detections", "mrcnn.evaluation.coco"),
    ("mrcnn.boxes", "compute_overlaps", "mrcnn.geometry.boxes"),
]


@pytest.mark.parametrize(("old", "attr", "new"), OLD_PATHS)
def test_0_1_paths_give_the_same_objects_with_a_deprecation_warning(old, attr, new):
    """Code written against 0.1.0's README keeps running, and is told where the name went.
    Runs in a fresh interpreter so the warning is not swallowed by an earlier import."""
    script = (
        "import warnings, importlib\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        f"new = importlib.import_module({new!r})\n"
        "try:\n"
        f"    importlib.import_module({old!r})\n"
        "except DeprecationWarning as w:\n"
        "    moved_to = str(w).split(' moved to ')[1].split(';')[0]\n"
        f"    assert {new!r}.startswith(moved_to), w\n"
        "else:\n"
        "    raise SystemExit('no DeprecationWarning')\n"
        "warnings.simplefilter('ignore')\n"
        f"old = importlib.import_module({old!r})\n"
        f"assert getattr(old, {attr!r}) is getattr(new, {attr!r})\n"
        "assert old is new\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_matterport_paths_import_without_warnings():
    """Matterport's own import lines are the current paths, not deprecated ones."""
    for name in ("mrcnn.config", "mrcnn.model", "mrcnn.utils", "mrcnn.visualize"):
        importlib.import_module(name)
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning:mrcnn", "-c",
         "from mrcnn.config import Config\nfrom mrcnn import utils, visualize\n"
         "import mrcnn.model as modellib\nmodellib.MaskRCNN; utils.Dataset; visualize.display_instances"],
        capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("package", ["mrcnn", "unet", "localization", "vision_common"])
def test_the_three_model_packages_never_import_each_other(package):
    """Each installs and runs alone: a U-Net user never pays for Mask R-CNN's imports (and the
    shared helpers in vision_common import none of the three)."""
    others = {"mrcnn", "unet", "localization"} - {package}
    wrong = []
    for path in sorted((MRCNN.parent / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            wrong += [f"{path.name}: {n}" for n in names if n.split(".")[0] in others]
    assert not wrong, wrong
