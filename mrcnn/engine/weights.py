"""Read and write Keras-2-layout HDF5 weight files by layer name (Matterport's ``.h5`` format).

A Keras 2 weights file has a root attribute ``layer_names``; each layer group has
``weight_names`` (``"conv1/kernel:0"``, ...) whose datasets hold the arrays in the layer's weight
order. Nested models (Matterport's ``rpn_model``) keep all their sub-layers' weights in one
group, so weights are grouped by the first component of each weight name.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import keras
import numpy as np

logger = logging.getLogger(__name__)


class WeightsFileError(ValueError):
    """A weights file is missing, not HDF5, truncated, or does not fit the model."""


class WeightShapeMismatch(WeightsFileError):
    """A layer's weights in the file have other shapes than the model's (another architecture)."""

    def __init__(self, mismatch: str) -> None:
        super().__init__(f"{mismatch} (pass exclude=[...] to skip this layer)")
        self.mismatch = mismatch


@dataclass
class LoadReport:
    """What a load did: layer names loaded, skipped (excluded or shape-mismatched) and missing."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # model layers with weights the file lacks
    unused: list[str] = field(default_factory=list)  # file layers the model does not have
    adapted: list[str] = field(default_factory=list)  # e.g. "conv1 adapted from 3 to 4 channels"

    def __str__(self) -> str:
        return (f"loaded {len(self.loaded)} layers, skipped {len(self.skipped)}, "
                f"missing from file {len(self.missing)}, unused in file {len(self.unused)}"
                + "".join(f"; {line}" for line in self.adapted))


def weight_layers(model_parts: Iterable[keras.Model]) -> dict[str, keras.layers.Layer]:
    """Every layer that owns weights, by name, walking nested functional models."""
    found: dict[str, keras.layers.Layer] = {}

    def visit(layer):
        if isinstance(layer, keras.Model):
            for sub in layer.layers:
                visit(sub)
        elif layer.weights:
            if layer.name in found and found[layer.name] is not layer:
                raise RuntimeError(f"two layers are named {layer.name!r}")
            found[layer.name] = layer

    for part in model_parts:
        visit(part)
    return found


def read_h5_weights(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Layer name -> list of arrays, from a Keras-2 layout HDF5 weights (or full-model) file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsFileError(f"weights file not found: {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise WeightsFileError(
            f"{path} is not a readable HDF5 weights file ({error}); expected a Keras .h5 file "
            "such as mask_rcnn_coco.h5 (was the download interrupted?)"
        ) from error
    with handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        if "layer_names" not in root.attrs:
            raise WeightsFileError(f"{path} has no 'layer_names' attribute: not a Keras weights file")
        layers: dict[str, list[np.ndarray]] = {}
        try:
            for group_name in _decode(root.attrs["layer_names"]):
                group = root[group_name]
                weight_names = _decode(group.attrs.get("weight_names", []))
                owners = [n.split("/")[0] for n in weight_names]
                # One owner: a plain layer (or a TimeDistributed wrapper whose inner layer has
                # an automatic name): the group name is the layer name. Several owners: a
                # nested model such as rpn_model, whose sub-layers keep their own names.
                if len(set(owners)) <= 1:
                    owners = [group_name] * len(weight_names)
                for owner, weight_name in zip(owners, weight_names, strict=True):
                    layers.setdefault(owner, []).append(np.asarray(group[weight_name]))
        except (KeyError, OSError) as error:
            raise WeightsFileError(f"{path} is truncated or damaged: {error}") from error
    return layers


def load_weights_by_name(
    layers_by_name: dict[str, keras.layers.Layer],
    path: str | os.PathLike,
    exclude: Sequence[str] = (),
    skip_mismatch: bool = False,
) -> LoadReport:
    """Set the weights of ``layers_by_name`` from ``path``, matching layers by name.

    ``exclude``: layer names (or regexes matched in full) to leave untouched. A shape mismatch
    raises WeightsFileError naming the layer and both shapes, unless ``skip_mismatch``.
    """
    return assign_weights(layers_by_name, read_h5_weights(path), Path(path).name, exclude,
                          skip_mismatch)


def assign_weights(
    layers_by_name: dict[str, keras.layers.Layer],
    file_layers: dict[str, list[np.ndarray]],
    source: str,
    exclude: Sequence[str] = (),
    skip_mismatch: bool = False,
) -> LoadReport:
    """Set layer weights from ``file_layers`` (name -> arrays) read from ``source``."""
    excluded = [re.compile(p) for p in exclude]
    report = LoadReport()
    for name, layer in layers_by_name.items():
        if any(p.fullmatch(name) for p in excluded):
            report.skipped.append(name)
            continue
        arrays = file_layers.get(name)
        if arrays is None:
            report.missing.append(name)
            continue
        expected = [tuple(w.shape) for w in layer.weights]
        found = [tuple(a.shape) for a in arrays]
        if expected != found:
            message = (f"layer {name!r}: the model expects weight shapes {expected} but "
                       f"{source} has {found}")
            if skip_mismatch:
                logger.warning("skipping %s", message)
                report.skipped.append(name)
                continue
            raise WeightShapeMismatch(message)
        layer.set_weights(arrays)
        report.loaded.append(name)
    report.unused = sorted(set(file_layers) - set(layers_by_name))
    logger.info("%s: %s", source, report)
    return report


def save_weights_h5(layers_by_name: dict[str, keras.layers.Layer], path: str | os.PathLike) -> None:
    """Write weights in the Keras-2 layout, atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with h5py.File(temporary, "w") as handle:
        handle.attrs["layer_names"] = np.array([n.encode() for n in layers_by_name], dtype="S")
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = keras.__version__.encode()
        for name, layer in layers_by_name.items():
            group = handle.create_group(name)
            weight_names = []
            for index, weight in enumerate(layer.weights):
                weight_name = f"{name}/{_short_name(weight, index)}:0"
                weight_names.append(weight_name.encode())
                group.create_dataset(weight_name, data=np.asarray(weight.numpy()))
            group.attrs["weight_names"] = np.array(weight_names, dtype="S")
        handle.flush()
    os.replace(temporary, path)


def _short_name(weight, index: int) -> str:
    name = getattr(weight, "name", "") or f"weight_{index}"
    return name.split("/")[-1].split(":")[0]


def _decode(values) -> list[str]:
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]
