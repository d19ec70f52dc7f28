"""Checks of the JSON the studio reads back from disk (run log lines, model sidecars, the active pointer).

A file edited by hand, damaged, or written by another program must be named with what is wrong in it, not
crash whoever reads it later with a TypeError far from the file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    kind: type | tuple[type, ...]  # what json.loads gives for it: str, dict, list, (int, float)
    nullable: bool = False  # null is allowed
    required: bool = True  # the key must be there (else the reader supplies a default)


TEXT = Field(str)
NUMBER_OR_NULL = Field((int, float), nullable=True)
OBJECT = Field(dict)


def problem(data: object, fields: dict[str, Field]) -> str | None:
    """Why `data` is not a JSON object with these fields, in words; None when it is."""
    if not isinstance(data, dict):
        return f"it holds {_describe(data)}, not an object"
    for name, spec in fields.items():
        if name not in data:
            if spec.required:
                return f'"{name}" is missing'
            continue
        value = data[name]
        if value is None and spec.nullable:
            continue
        if isinstance(value, bool) or not isinstance(value, spec.kind):  # bool is an int to Python, not to us
            return f'"{name}" is {_describe(value)}, not {_kind_name(spec.kind)}'
    return None


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, (str, int, float)):
        return _kind_name(type(value))
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return "a number"
    return {str: "text", dict: "an object", list: "a list"}.get(kind, kind.__name__)
