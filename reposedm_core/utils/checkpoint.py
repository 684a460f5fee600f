"""safetensors checkpoints that describe themselves: weights + the model's kind and config in the metadata.

One file fully describes a model. Loading validates the kind, the config, every key and every shape, and
says what is wrong with a wrong, truncated or foreign file. Nothing pickled is ever loaded.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import RePoseError

FORMAT = "reposedm-checkpoint/1"


class CheckpointError(RePoseError, ValueError):
    """A checkpoint file that cannot be used: the message says what is wrong and what was expected."""


def save_checkpoint(path: str | os.PathLike, kind: str, config: dict[str, Any],
                    tensors: dict[str, torch.Tensor], extra: dict[str, Any] | None = None) -> Path:
    """Write ``tensors`` with ``{"format", "kind", "config", "extra"}`` metadata, atomically (tmp + rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": FORMAT, "kind": kind, "config": json.dumps(config, sort_keys=True),
                "extra": json.dumps(extra or {}, sort_keys=True)}
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(contiguous, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | os.PathLike, kind: str) -> tuple[dict[str, Any], dict[str, torch.Tensor],
                                                               dict[str, Any]]:
    """Read (config, tensors, extra) of a checkpoint of ``kind``; CheckpointError for anything else."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path.name}: only .safetensors checkpoints are loaded (never pickles); "
                              f"got a '{path.suffix}' file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"{path.name} is not a readable safetensors file (truncated or corrupt?): {e}") from e
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a RePoseDM checkpoint (metadata format "
                              f"{metadata.get('format')!r}, expected {FORMAT!r}); it may belong to another model")
    if metadata.get("kind") != kind:
        raise CheckpointError(f"{path.name} holds a {metadata.get('kind')!r} model, expected a {kind!r} model")
    try:
        config = json.loads(metadata["config"])
        extra = json.loads(metadata.get("extra", "{}"))
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path.name}: the config in its metadata is missing or not JSON ({e})") from e
    return config, tensors, extra


def load_state_strict(module: torch.nn.Module, tensors: dict[str, torch.Tensor], name: str) -> None:
    """Load ``tensors`` into ``module`` after checking every key and shape; CheckpointError says which differ."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if tuple(expected[k].shape) != tuple(tensors[k].shape))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {missing[:3]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
    if wrong:
        k = wrong[0]
        problems.append(f"{len(wrong)} shape mismatches (e.g. {k}: file {tuple(tensors[k].shape)}, "
                        f"model {tuple(expected[k].shape)})")
    if problems:
        raise CheckpointError(f"{name} does not match its config: " + "; ".join(problems))
    module.load_state_dict(tensors, strict=True)


def load_checkpoint_module(path: str | os.PathLike, kind: str, build: Callable[[dict[str, Any]], torch.nn.Module],
                           what: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(module, extra) of a checkpoint of ``kind``: ``build(config)`` makes the module (a config it cannot take --
    a TypeError -- is a ValueError naming the file and ``what`` it should describe), then every key and shape
    is checked and loaded. The tensors are normal ones even under ``torch.inference_mode()`` (as ComfyUI runs
    prompts), so the module can be differentiated."""
    path = Path(path)
    with torch.inference_mode(False):
        config, tensors, extra = read_checkpoint(path, kind)
        try:
            module = build(config)
        except TypeError as e:
            raise ValueError(f"{path.name}: its config {config} does not describe a {what} ({e})") from e
        load_state_strict(module, tensors, path.name)
    return module, extra


def save_training_state(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                        optimizer: torch.optim.Optimizer | None, meta: dict[str, Any]) -> Path:
    """A resumable training state in one safetensors file: model/EMA tensors, the optimizer's per-parameter
    tensors (flattened as ``opt.<index>.<name>``) and JSON metadata (step, param groups, anything else)."""
    from safetensors.torch import save_file

    out = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    groups = None
    if optimizer is not None:
        sd = optimizer.state_dict()
        for idx, state in sd["state"].items():
            for name, value in state.items():
                out[f"opt.{idx}.{name}"] = torch.as_tensor(value).detach().contiguous().cpu()
        groups = sd["param_groups"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(out, str(tmp), metadata={"format": FORMAT, "kind": "training-state",
                                       "meta": json.dumps({**meta, "param_groups": groups})})
    os.replace(tmp, path)  # a kill mid-write leaves the previous state intact
    return path


def load_training_state(path: str | os.PathLike, optimizer: torch.optim.Optimizer | None
                        ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a state written by :func:`save_training_state`; restores the optimizer in place."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises several types for truncated files
        raise CheckpointError(f"training state {path} is unreadable (truncated?): {e}") from e
    if metadata.get("kind") != "training-state":
        raise CheckpointError(f"{path.name} is not a training state (kind {metadata.get('kind')!r})")
    meta = json.loads(metadata["meta"])
    if optimizer is not None:
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key in [k for k in tensors if k.startswith("opt.")]:
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = tensors.pop(key)
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return tensors, meta
