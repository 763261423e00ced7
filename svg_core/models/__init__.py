"""Model families and the one ``build_model(cfg)`` used by training, evaluation and the app.

| family | config | model |
|---|---|---|
| base | ``BaseConfig`` | ``BaseGrounder`` (audio query; optionally VGCL-pretrained encoder) |
| vslnet | ``VSLNetConfig`` | ``VSLNetGrounder`` |
| text | ``TextConfig`` | ``TextGrounder`` |
| cpc | ``CPCConfig`` | ``CPCPretrainModel`` (CPC / VGCL pre-training) |
| sil | ``SILConfig`` | ``SILGrounder`` (weakly supervised; proposal map) |
| asp | ``ASPConfig`` | ``ASPPretrainModel`` (SIL speech-encoder pre-training) |
| avlnet | ``AVLnetConfig`` | ``AVLnet`` (spoken video search: query and clip embeddings) |
| fsan | ``FSANConfig`` | ``FSANGrounder`` (weakly supervised; token-by-clip alignment map) |

``config_to_dict``/``config_from_dict`` give the JSON form stored in a checkpoint's config.json
(a ``family`` key plus the dataclass fields; nested configs as dicts, tuples as lists). A field
added after checkpoints were shipped is read, when its key is missing, as the value that gives
the behaviour those checkpoints were trained with (``LEGACY_DEFAULTS``), not as the default of
a new config.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Union

from torch import nn

from svg_core.models.asp import ASPConfig, ASPPretrainModel, build_asp
from svg_core.models.avlnet import AVLnet, AVLnetConfig, build_avlnet
from svg_core.models.base import BaseConfig, BaseGrounder, GroundingConfig, build_base
from svg_core.models.cpc import CPCConfig, CPCPretrainModel, build_cpc
from svg_core.models.fsan import FSANConfig, FSANGrounder, build_fsan
from svg_core.models.sil import SILConfig, SILGrounder, build_sil
from svg_core.models.text import TextConfig, TextGrounder, build_text, build_vocab
from svg_core.models.vslnet import VSLNetConfig, VSLNetGrounder, build_vslnet

ModelConfig = Union[BaseConfig, VSLNetConfig, TextConfig, CPCConfig, SILConfig, ASPConfig, AVLnetConfig, FSANConfig]

# config type <-> family name in config.json (the type decides; the name is only for JSON)
FAMILIES: dict[type, str] = {BaseConfig: "base", VSLNetConfig: "vslnet", TextConfig: "text", CPCConfig: "cpc"}
FAMILIES.update({SILConfig: "sil", ASPConfig: "asp", AVLnetConfig: "avlnet", FSANConfig: "fsan"})
_BY_NAME = {name: cls for cls, name in FAMILIES.items()}

# Fields whose new-config default differs from the behaviour before the field existed: the value
# a config dict WITHOUT the key stands for. Looked up along the class's bases (VSLNetConfig gets
# BaseConfig's entries); applies to nested configs (BaseConfig.cpc) too.
LEGACY_DEFAULTS: dict[type, dict[str, Any]] = {
    BaseConfig: {"audio_subsample": 1},  # v2 checkpoints: every 10 ms frame into DAVEnet1
    CPCConfig: {"audio_subsample": 1},  # v2 pre-trained encoders: every 10 ms frame into g_enc
}


def build_model(cfg: ModelConfig) -> nn.Module:
    """Build the (randomly initialised) model of a config, from the config alone.

    Dispatches on the config's exact type. Nothing is read from disk: a Base/VSLNet config with
    ``pretrained_encoder`` set and ``cpc`` unset raises ``ValueError``; build it with
    ``svg_core.engine.checkpoint.build_with_pretrained`` (which fills ``cpc`` and loads the
    encoder weights). With ``cpc`` set (a saved grounding config) the stage is built from it.

    Args:
        cfg: one of the per-family config dataclasses.

    Returns:
        the model; grounders carry ``cfg`` as ``model.cfg``.
    """
    kind = type(cfg)
    if kind is BaseConfig:
        return build_base(cfg)
    if kind is VSLNetConfig:
        return build_vslnet(cfg)
    if kind is TextConfig:
        return build_text(cfg)
    if kind is CPCConfig:
        return build_cpc(cfg)
    if kind is SILConfig:
        return build_sil(cfg)
    if kind is ASPConfig:
        return build_asp(cfg)
    if kind is AVLnetConfig:
        return build_avlnet(cfg)
    if kind is FSANConfig:
        return build_fsan(cfg)
    raise ValueError(f"no model family for config type {kind.__name__}")


def config_to_dict(cfg: ModelConfig) -> dict[str, Any]:
    """JSON-ready dict of a config: ``{"family": ..., **fields}``."""
    if type(cfg) not in FAMILIES:
        raise ValueError(f"not a model config: {type(cfg).__name__}")
    return {"family": FAMILIES[type(cfg)], **dataclasses.asdict(cfg)}


def _from_text(hint: Any, raw: str) -> Any:
    """A command-line string as the annotated scalar type: ``"true"`` -> True, ``"64,128"`` -> (64, 128)."""
    if hint is bool:
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ValueError("expected true or false")
        return raw.lower() in ("true", "1")
    if hint in (int, float):
        return hint(raw)
    if typing.get_origin(hint) is tuple:
        item = (typing.get_args(hint) or (int,))[0]
        return tuple(item(v) for v in raw.split(",") if v.strip())
    return raw


def _convert(hint: Any, value: Any, from_text: bool) -> Any:
    """Turn a JSON value (or, with ``from_text``, a KEY=VALUE string) into the annotated type."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(hint):
            if arg is not type(None):
                return _convert(arg, value, from_text)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return _dataclass_from_dict(hint, value)
    if from_text and isinstance(value, str):
        value = _from_text(hint, value)
    if origin is typing.Literal and value not in typing.get_args(hint):
        raise ValueError(f"expected one of {', '.join(map(str, typing.get_args(hint)))}")
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def coerce_fields(cls: type, data: dict[str, Any], from_text: bool = False) -> dict[str, Any]:
    """Typed values for fields of config dataclass ``cls``: the one conversion of config values.

    Used for config.json (JSON values) and for ``train --set KEY=VALUE`` (``from_text``: strings
    parsed as the field's annotation: bool, int, float, tuple of ints, a Literal's choices).

    Raises:
        ValueError: an unknown field name (the valid ones are listed) or a value of the wrong kind.
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}; valid: {', '.join(sorted(names))}")
    out = {}
    for key, value in data.items():
        try:
            out[key] = _convert(hints[key], value, from_text)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad value for {key}: {value!r} ({exc})") from None
    return out


def legacy_defaults(cls: type) -> dict[str, Any]:
    """``LEGACY_DEFAULTS`` of ``cls`` and its bases (the nearest class wins)."""
    out: dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        out.update(LEGACY_DEFAULTS.get(base, {}))
    return out


def _dataclass_from_dict(cls: type, data: dict[str, Any]) -> Any:
    return cls(**coerce_fields(cls, {**legacy_defaults(cls), **data}))


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Inverse of ``config_to_dict``. A missing field takes its ``LEGACY_DEFAULTS`` value when it
    has one (the behaviour of configs written before the field), else its default; unknown
    fields raise."""
    data = dict(data)
    family = data.pop("family", None)
    if family not in _BY_NAME:
        raise ValueError(f"config family must be one of {sorted(_BY_NAME)}, found {family!r}")
    return _dataclass_from_dict(_BY_NAME[family], data)


__all__ = [
    "ASPConfig", "ASPPretrainModel", "AVLnet", "AVLnetConfig", "FSANConfig", "FSANGrounder", "SILConfig", "SILGrounder",
    "FAMILIES", "LEGACY_DEFAULTS", "BaseConfig", "BaseGrounder", "CPCConfig", "CPCPretrainModel",
    "GroundingConfig", "ModelConfig", "TextConfig", "TextGrounder", "VSLNetConfig", "VSLNetGrounder",
    "build_model", "build_vocab", "coerce_fields", "config_from_dict", "config_to_dict", "legacy_defaults",
]  # fmt: skip
