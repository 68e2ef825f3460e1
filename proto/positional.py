"""Commands and events between their two shapes: positional (array-like msgspec structs, as
msgpack and the log hold them) and maps keyed by camelCase field names (the JSON edge, and log
formats 1 and 2).

    as_map(value)                 a struct (nested ones too) -> builtins with named fields
    positional(obj, cls)          a map-form dict of `cls` -> the positional list msgspec
                                  decodes (missing fields with defaults are filled; unknown
                                  names are ignored; a missing required field is a KeyError)
    MapForm(cls)                  a map-form twin of `cls` (same fields, types, defaults,
                                  tag and strictness) for validating a dict, then `cls(...)`
"""
from __future__ import annotations

import typing
from typing import Any

import msgspec

_NOTHING = object()


def _plan(cls: type) -> tuple:
    """(tag field, tag, encoded names, nested struct class per field or None, defaults)."""
    plan = _PLANS.get(cls)
    if plan is None:
        config = cls.__struct_config__
        hints = typing.get_type_hints(cls)
        nested = []
        for name in cls.__struct_fields__:
            hint = hints.get(name)
            inner = None
            if typing.get_origin(hint) is list:
                (arg,) = typing.get_args(hint)
                if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
                    inner = arg
            nested.append(inner)
        names = cls.__struct_encode_fields__
        defaults = (_NOTHING,) * (len(names) - len(cls.__struct_defaults__)) + \
            tuple(cls.__struct_defaults__)
        plan = _PLANS[cls] = (config.tag_field, config.tag, names, tuple(nested), defaults)
    return plan


_PLANS: dict[type, tuple] = {}


def as_map(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        tag_field, tag, names, _, _ = _plan(type(value))
        out: dict = {tag_field: tag} if tag_field is not None else {}
        for name, v in zip(names, msgspec.structs.astuple(value)):
            out[name] = as_map(v) if isinstance(v, (msgspec.Struct, list, tuple, dict)) else v
        return out
    if isinstance(value, (list, tuple)):
        return [as_map(v) for v in value]
    if isinstance(value, dict):
        return {k: as_map(v) for k, v in value.items()}
    return value


def positional(obj: dict, cls: type) -> list:
    tag_field, tag, names, nested, defaults = _plan(cls)
    out: list = [tag] if tag_field is not None else []
    for name, inner, default in zip(names, nested, defaults):
        if name in obj:
            v = obj[name]
            if inner is not None and isinstance(v, list):
                v = [positional(x, inner) if isinstance(x, dict) else x for x in v]
        elif default is _NOTHING:
            raise KeyError(f"{cls.__name__} missing required field `{name}`")
        else:
            v = default  # (no command or event has a mutable default: no factories here)
        out.append(v)
    return out


def map_form(cls: type) -> type:
    """A map-form struct with `cls`'s fields, types, defaults, tag and strictness."""
    twin = _TWINS.get(cls)
    if twin is None:
        config = cls.__struct_config__
        hints = typing.get_type_hints(cls)
        fields = []
        defaults = dict(zip(cls.__struct_fields__[len(cls.__struct_fields__)
                                                  - len(cls.__struct_defaults__):],
                            cls.__struct_defaults__))
        for name in cls.__struct_fields__:
            if name in defaults:
                fields.append((name, hints[name], defaults[name]))
            else:
                fields.append((name, hints[name]))
        twin = _TWINS[cls] = msgspec.defstruct(
            cls.__name__, fields, tag_field=config.tag_field, tag=config.tag,
            rename="camel", forbid_unknown_fields=config.forbid_unknown_fields, frozen=True)
    return twin


_TWINS: dict[type, type] = {}


def from_map(obj: Any, cls: type) -> Any:
    """Validate a map-form dict as `cls` (msgspec's errors name the field) -> a `cls`."""
    twin = msgspec.convert(obj, map_form(cls))
    return cls(*msgspec.structs.astuple(twin))
