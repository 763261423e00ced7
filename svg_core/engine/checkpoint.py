"""Self-describing checkpoints with no pickled code.

A model checkpoint is a folder::

    DIR/
      model.safetensors   # weights (safetensors: a flat tensor table, never executable)
      config.json         # the model-family config, from ``svg_core.models.config_to_dict``
      metrics.json        # optional: metrics, training arguments and notes (``extra``)

A training state (for ``--resume``) is one ``training_state.pt`` holding only plain
containers, numbers, strings and tensors: optimizer and scheduler state dicts, RNG states,
epoch/step counters and the best metric so far. It is written with ``torch.save`` and read with
``torch.load(weights_only=True)``, which refuses any pickle that names a class or a function.

Every file is written to a temporary name in the destination folder and then moved into place
with ``os.replace`` (:func:`svg_core.atomic_file.atomic_write`; atomic on POSIX and Windows), so a
crash mid-write leaves either the old file or the new one, never a truncated file.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from svg_core.data.atomic_file import atomic_write

WEIGHTS_NAME = "model.safetensors"
LEGACY_WEIGHTS_NAME = "model.pt"  # weights-only torch file, accepted on load
CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.json"
TRAINING_STATE_NAME = "training_state.pt"


def _write_json(path: Path, obj: Any) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=True, allow_nan=True)
            f.write("\n")

    atomic_write(path, write)


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the bare module under a ``DistributedDataParallel``/``DataParallel`` wrapper."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def model_state_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies of the weights, with tensors that share storage cloned apart.

    safetensors refuses tensors that share memory (tied weights); cloning each one keeps the
    file self-contained, and ``load_state_dict`` re-ties them on load because it copies into the
    model's own (tied) parameters.
    """
    state = unwrap_model(model).state_dict()
    return {name: t.detach().to("cpu").contiguous().clone() for name, t in state.items()}


def save_checkpoint(
    directory: str | os.PathLike,
    model: nn.Module,
    cfg: Any,
    extra: dict | None = None,
) -> Path:
    """Write ``model.safetensors`` + ``config.json`` (+ ``metrics.json`` when ``extra`` is given).

    Args:
        directory: destination folder (created if missing). Existing files are replaced
            atomically one by one.
        model: the model, possibly wrapped in DDP (the ``module.`` prefix is never saved).
        cfg: the model-family config dataclass; serialised with
            ``svg_core.models.config_to_dict``.
        extra: JSON-serialisable dict written to ``metrics.json`` (metrics, train args, notes).

    Returns:
        The checkpoint folder as a ``Path``.
    """
    from svg_core.models import config_to_dict  # local import: models import nothing from here

    directory = Path(directory)
    config = config_to_dict(cfg)
    state = model_state_for_saving(model)
    # Weights first, config last: a folder whose config.json is present was completely written
    # at least once, and each file on its own is always complete.
    atomic_write(directory / WEIGHTS_NAME, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
    if extra is not None:
        _write_json(directory / METRICS_NAME, extra)
    _write_json(directory / CONFIG_NAME, config)
    return directory


def load_state_dict_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """Read a weights file (safetensors, or a weights-only torch file) without running code.

    Raises:
        ValueError: when the file is not valid safetensors, or when a ``.pt`` file carries
            pickled code (classes or functions) rather than plain tensors.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path), device=str(device))
        except SafetensorError as err:
            raise ValueError(f"{path} is not a valid safetensors file: {err}") from err
    state = safe_torch_load(path, map_location=device)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} must hold a flat dict of tensors, found {type(state).__name__}")
    return state


def load_checkpoint(
    directory: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[nn.Module, Any, dict]:
    """Rebuild a model from a checkpoint folder written by :func:`save_checkpoint`.

    Args:
        directory: checkpoint folder with ``config.json`` and ``model.safetensors`` (or a
            weights-only ``model.pt``).
        device: where to put the model.

    Returns:
        ``(model, cfg, meta)``: the model in eval mode on ``device``, its config dataclass, and
        the content of ``metrics.json`` (``{}`` when absent) with ``"checkpoint_dir"`` added.

    Raises:
        ValueError: missing files, weights that do not match the config, or pickled code.
    """
    from svg_core.models import build_model, config_from_dict

    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise ValueError(f"checkpoint folder {directory} has no {CONFIG_NAME}")
    weights_path = directory / WEIGHTS_NAME
    if not weights_path.is_file():
        weights_path = directory / LEGACY_WEIGHTS_NAME
    if not weights_path.is_file():
        raise ValueError(f"checkpoint folder {directory} has no {WEIGHTS_NAME} (nor {LEGACY_WEIGHTS_NAME})")
    cfg = config_from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    # The grounding config carries the pretrained stage's architecture (cfg.cpc); its weights are
    # in this checkpoint, so the pretrained_encoder folder is never read again.
    model = build_model(cfg)
    state = load_state_dict_file(weights_path)
    # Checkpoints written by the released VGCL code under nn.DataParallel carry "module.".
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches raise even with strict=False
        raise ValueError(f"weights in {weights_path} do not match the config: {err}") from err
    if missing or unexpected:
        raise ValueError(
            f"weights in {weights_path} do not match the config: missing {sorted(missing)[:5]}"
            f" ({len(missing)} in all), unexpected {sorted(unexpected)[:5]} ({len(unexpected)} in all)"
        )
    meta: dict = {}
    if (directory / METRICS_NAME).is_file():
        meta = json.loads((directory / METRICS_NAME).read_text(encoding="utf-8"))
    meta["checkpoint_dir"] = str(directory)
    return model.to(device).eval(), cfg, meta


def build_with_pretrained(cfg: Any) -> nn.Module:
    """Build a model whose config may name a CPC/VGCL ``pretrained_encoder`` still to be read.

    For a Base/VSLNet config with ``pretrained_encoder`` set and ``cpc`` unset, the checkpoint
    at that path is read: its config becomes ``cfg.cpc``, the model is built with
    ``build_model`` and the encoder weights are copied into the first audio stage. Any other
    config is built as ``build_model(cfg)`` (no file is read). Save ``model.cfg`` with the
    grounding checkpoint so it reloads without the path.

    Args:
        cfg: a model-family config dataclass.

    Returns:
        the model; ``model.cfg`` has ``cpc`` resolved.

    Raises:
        ValueError: the path is not a checkpoint of a ``CPCConfig`` model.
    """
    from svg_core.models import CPCConfig, build_model  # local import, as in load_checkpoint

    path = getattr(cfg, "pretrained_encoder", None)
    if path is None or cfg.cpc is not None:
        return build_model(cfg)
    cpc_model, cpc_cfg, _ = load_checkpoint(path)
    if not isinstance(cpc_cfg, CPCConfig):
        raise ValueError(f"pretrained_encoder must be a CPC checkpoint, found a {type(cpc_cfg).__name__} at {path}")
    model = build_model(replace(cfg, cpc=cpc_cfg))
    model.query_encoder.encoder.stage1.load_state_dict(cpc_model.encoder.state_dict())
    return model


def warm_start(model: nn.Module, cfg: Any, directory: str | os.PathLike) -> int:
    """Copy every weight of the checkpoint ``directory`` into ``model`` (``--init-from``).

    A warm start, not a resume: the optimizer, schedule and early-stopping state start afresh.
    It carries a run to a new machine with its weights alone (17 MB for the world-6 front-end
    student), where ``--resume`` would need ``last/training_state.pt`` (three times that, with the
    optimizer's moments). Every config field must match, the ``pretrained_encoder`` path included.

    Args:
        model: the freshly built model of the run (possibly DDP-wrapped).
        cfg: its config dataclass; the checkpoint's must be equal field by field.

    Returns:
        the number of tensors copied.

    Raises:
        ValueError: not a checkpoint, or a config that differs (the first differing field is named).
    """
    from svg_core.models import config_to_dict  # local import, as in save_checkpoint

    source, source_cfg, _ = load_checkpoint(directory)
    found = json.loads(json.dumps(config_to_dict(source_cfg)))  # tuples -> lists on both sides
    wanted = json.loads(json.dumps(config_to_dict(cfg)))
    for key in sorted(set(found) | set(wanted)):
        if found.get(key) != wanted.get(key):
            raise ValueError(f"--init-from {directory}: its {key} is {found.get(key)!r}, this run's "
                             f"{wanted.get(key)!r} (give the same --model and --set as the run it came from)")
    state = source.state_dict()
    unwrap_model(model).load_state_dict(state)
    return len(state)


def safe_torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` that refuses pickled code, with a clear error.

    Raises:
        ValueError: the file names a class or function (anything beyond tensors, numbers,
            strings and plain containers), or is not a torch file at all.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # Keep torch's one useful line ("Unsupported global: GLOBAL module.Name ...").
        lines = [ln.strip() for ln in str(err).splitlines() if "Unsupported" in ln or "GLOBAL" in ln]
        detail = lines[0] if lines else str(err).splitlines()[0]
        raise ValueError(
            f"refusing to load {path}: it carries pickled code or objects other than tensors and"
            f" plain containers ({detail})"
        ) from err
    except RuntimeError as err:
        raise ValueError(f"{path} is not a readable torch file: {err}") from err


def save_training_state(path: str | os.PathLike, state: dict) -> Path:
    """Atomically ``torch.save`` a resume state made of tensors and plain containers only.

    Args:
        path: destination file (usually ``runs/NAME/last/training_state.pt``).
        state: e.g. ``{"optimizer": ..., "scheduler": ..., "scaler": ..., "rng": {...},
            "epoch": int, "step": int, "best": {...}}``. It must load under
            ``weights_only=True``; this is checked before the file is moved into place.
    """
    path = Path(path)

    def write(tmp: str) -> None:
        torch.save(state, tmp)
        safe_torch_load(tmp)  # fail now, not at resume time, if something unsafe slipped in

    atomic_write(path, write)
    return path


def load_training_state(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """Read a state written by :func:`save_training_state`; refuses pickled code.

    Raises:
        ValueError: missing file, pickled code, or a top level that is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no training state at {path}")
    state = safe_torch_load(path, map_location=device)
    if not isinstance(state, dict):
        raise ValueError(f"training state {path} must be a dict, found {type(state).__name__}")
    return state
