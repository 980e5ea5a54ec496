"""Loading configs: YAML files and ``"section.field=value"`` overrides into the typed schema.

:mod:`torchrl_mappo.config` declares the fields; this module turns plain data
into them: each value is coerced to its field's type annotation (unknown
keys and wrong types are one-line :class:`ConfigError` s with a did-you-mean),
then :meth:`Config.check` runs the range checks and the env family's
scenario list is consulted. No torch is imported here, so a bad config is
reported at once.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Hashable, Literal, Sequence

import yaml

from torchrl_mappo.config import Config, GroupConfig, LossConfig, ModelConfig
from torchrl_mappo.envs.scenarios import check_scenario
from torchrl_mappo.errors import ConfigError, did_you_mean

__all__ = ["apply_overrides", "load_config", "config_from_dict", "config_to_dict"]

_SECTIONS = {
    f.name: f.type for f in dataclasses.fields(Config) if f.name not in ("source", "per_group")
}
_UNION = (typing.Union, types.UnionType)


# --------------------------------------------------------------------------- #
# Values against their fields' type annotations
# --------------------------------------------------------------------------- #
def _type_name(tp: Any) -> str:
    """How an annotation reads in an error: ``an integer``, ``a list of an integer``, ``one of 'a', 'b'``."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in _UNION:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = " or ".join(_type_name(a) for a in args)
        return f"{inner} or null" if len(args) < len(typing.get_args(tp)) else inner
    if origin is list:
        (arg,) = typing.get_args(tp)
        return f"a list of {_type_name(arg)}"
    if origin is dict:
        return "a mapping"
    names = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}
    return names.get(tp) or getattr(tp, "__name__", str(tp))


def _check_finite(value: Any, where: str) -> None:
    """No NaN or infinity anywhere in ``value`` (a number, or numbers nested in mappings and lists)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: {value!r} is not a finite number; give a finite value")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_finite(v, f"{where}[{i}]")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Return ``value`` as type ``tp`` or raise ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    bad = ConfigError(
        f"{where}: expected {_type_name(tp)}, got {value!r} "
        f"({type(value).__name__}); fix the value in the config or override"
    )
    if tp is Any:
        _check_finite(value, where)
        return value
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in typing.get_args(tp)], 1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{where}: {value!r} is not allowed; use {_type_name(tp)}{hint}")
    if origin in _UNION:
        _check_finite(value, where)
        return _coerce_union(value, typing.get_args(tp), where, bad)
    if origin is list:
        (arg,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise bad
        return [_coerce(v, arg, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        _check_finite(value, where)
        return dict(value)
    return _coerce_scalar(value, tp, where, bad)


def _coerce_union(value: Any, args: tuple, where: str, bad: ConfigError) -> Any:
    """The first member of ``X | Y | None`` that takes ``value``."""
    if value is None:
        if type(None) in args:
            return None
        raise bad
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _coerce(value, arg, where)
        except ConfigError:
            continue
    raise bad


def _coerce_scalar(value: Any, tp: Any, where: str, bad: ConfigError) -> Any:
    """``bool``, ``int``, ``float``, ``str``: a bool is never a number, an integral float is an int."""
    if tp is bool or tp is str:
        if isinstance(value, tp):
            return value
        raise bad
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, str):
            # PyYAML reads ``3e-4`` (no dot) as a string: accept it as a number.
            try:
                value = float(value)
            except ValueError:
                raise bad from None
        if not isinstance(value, (int, float)):
            raise bad
        _check_finite(value, where)
        return float(value)
    raise bad


# --------------------------------------------------------------------------- #
# Sections
# --------------------------------------------------------------------------- #
def _build_section(cls: type, data: Any, section: str, origin: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin}: section '{section}' must be a mapping of field: value, "
            f"got {type(data).__name__}"
        )
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            hint = did_you_mean(str(key), names, show=lambda name: f"'{section}.{name}'")
            raise ConfigError(
                f"{origin}: unknown key '{section}.{key}'{hint} "
                f"(valid keys: {', '.join(names)})"
            )
        kwargs[key] = _coerce(value, hints[key], f"{origin}: {section}.{key}")
    return cls(**kwargs)


def _build_per_group(data: Any, origin: str) -> dict[str, GroupConfig]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: per_group must map group names to settings, got {type(data).__name__}")
    out = {}
    for group, values in data.items():
        gcfg = _build_section(GroupConfig, values, f"per_group.{group}", origin)
        # The overrides must be valid fields of their sections, with valid types.
        for name, cls in (("model", ModelConfig), ("loss", LossConfig)):
            _build_section(cls, getattr(gcfg, name), f"per_group.{group}.{name}", origin)
            hints = typing.get_type_hints(cls)
            setattr(gcfg, name, {
                k: _coerce(v, hints[k], f"{origin}: per_group.{group}.{name}.{k}")
                for k, v in getattr(gcfg, name).items()
            })
        out[str(group)] = gcfg
    return out


def _check_top_level(data: Any, origin: str) -> dict:
    """The document is a mapping of sections (``None``: an empty file)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


# --------------------------------------------------------------------------- #
# Public entry points
# --------------------------------------------------------------------------- #
def config_from_dict(data: Any, origin: str = "config") -> Config:
    """Build and validate a :class:`Config` from a plain mapping."""
    data = _check_top_level(data, origin)
    for key in data:
        if key not in _SECTIONS and key != "per_group":
            hint = did_you_mean(str(key), _SECTIONS, show=lambda name: f"'{name}'")
            raise ConfigError(
                f"{origin}: unknown section '{key}'{hint} (valid sections: {', '.join([*_SECTIONS, 'per_group'])})"
            )
    hints = typing.get_type_hints(Config)
    sections = {
        name: _build_section(hints[name], data.get(name), name, origin) for name in _SECTIONS
    }
    cfg = Config(**sections, per_group=_build_per_group(data.get("per_group"), origin))
    cfg.check(origin)
    # Last: it imports the simulator (and torch) to list its scenarios.
    check_scenario(cfg.env, origin)
    return cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The fully resolved config as plain data (what ``config.yaml`` of a run holds)."""
    out = dataclasses.asdict(cfg)
    out.pop("source", None)
    return out


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """A deep copy of the plain config ``data`` with ``"section.field=value"`` overrides applied
    (validate it with :func:`config_from_dict`)."""
    import copy

    data = copy.deepcopy(data)
    for override in overrides:
        _apply_override(data, override)
    return data


def _apply_override(data: dict, override: str) -> None:
    if not isinstance(override, str) or "=" not in override:
        raise ConfigError(
            f"override {override!r}: expected 'section.field=value', e.g. 'train.lr=1e-3'"
        )
    path, _, raw = override.partition("=")
    parts = path.strip().split(".")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    if len(parts) < 2 or not all(parts):
        raise ConfigError(
            f"override {override!r}: the key must name a section and a field, e.g. 'train.seed=1'"
            + (_override_hint(parts[0], raw, value) if len(parts) == 1 and parts[0] else "")
        )
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {override!r}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def _override_hint(key: str, raw: str, value: Any) -> str:
    """What a one-word key most likely meant: a section given as a mapping (one override per
    field, quoted for the shell where a value has spaces), or a field of a section."""
    if (key in _SECTIONS or key == "per_group") and isinstance(value, dict) and value:
        flat = _flat_overrides(key, value)
        return "; one override per field: " + " ".join(f"'{o}'" if " " in o else o for o in flat)
    hints = typing.get_type_hints(Config)
    owners = [name for name in _SECTIONS if key in {f.name for f in dataclasses.fields(hints[name])}]
    return f"; did you mean {' or '.join(repr(f'{o}.{key}={raw}') for o in owners)}?" if owners else ""


def _flat_overrides(prefix: str, value: Any) -> list[str]:
    """``{"a": {"b": 1}}`` under ``prefix`` as ``["prefix.a.b=1"]`` (values in YAML flow style)."""
    if isinstance(value, dict) and value:
        return [o for k, v in value.items() for o in _flat_overrides(f"{prefix}.{k}", v)]
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return [f"{prefix}={text.removesuffix('...').strip()}"]


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error
    (PyYAML keeps the last one: a second ``train:`` block would silently drop the first)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # PyYAML's own constructor reports an unhashable key
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (merge the two)", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Load a YAML config, apply ``"section.field=value"`` overrides, validate.

    Args:
        path: YAML file with the sections ``env``, ``model``, ``loss``,
            ``train``, ``run`` and ``collector`` (each optional; missing fields take the
            dataclass defaults).
        overrides: strings such as ``"train.seed=3"`` or
            ``"env.scenario_kwargs.n_agents=4"``; values are parsed as YAML.

    Raises:
        ConfigError: missing or unreadable file, unknown key, wrong type or
            out-of-range value. The message names the field and the fix.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {str(path)!r} (give the path to a YAML file, e.g. configs/vmas_navigation.yaml)")
    try:
        data = yaml.load(p.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', err)}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the file: {err}") from None
    data = _check_top_level(data, str(path))
    for override in overrides:
        _apply_override(data, override)
    cfg = config_from_dict(data, origin=str(path))
    cfg.source = str(path)
    return cfg
