"""The state contract every per-stream component implements so a session can be saved and resumed.

A component's state is a pair ``(tensors, meta)``:

* ``tensors``: ``dict[str, Tensor]`` of every array it holds (any device, any dtype; saved to
  safetensors, loaded back onto the model's device);
* ``meta``: a JSON-serialisable ``dict`` of everything else (counters, lengths, names, parameters).
  Floats round-trip exactly through JSON (``repr``), so timestamps and averages come back bit-equal.

Two methods make a component persistable::

    def state_dict(self) -> tuple[dict[str, Tensor], dict[str, Any]]: ...
    def load_state_dict(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None: ...

``load_state_dict`` is called on a freshly built component of the same kind (same constructor
arguments) and must leave it exactly as the saved one was; it raises ``ValueError`` when the state
does not fit (a different layer count, a different policy), naming what differs.

Composites nest their parts with :func:`merge_states` / :func:`part_of`: a part named ``cache`` has its
tensors stored under ``cache.<key>`` and its meta under ``meta["cache"]``. To add a new component (an
archive tier, a quantised KV tier) to saved sessions, implement the two methods and add it to its
owner's parts (``MemoryBank.stateful_parts``); nothing in the file format changes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

StateDict = tuple[dict[str, Tensor], dict[str, Any]]


@runtime_checkable
class Stateful(Protocol):
    """A per-stream component that can be saved and restored (see the module docstring)."""

    def state_dict(self) -> StateDict: ...

    def load_state_dict(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None: ...


def merge_states(parts: dict[str, Stateful], meta: dict[str, Any] | None = None) -> StateDict:
    """One state of several named parts: tensors keyed ``<part>.<key>``, meta keyed ``<part>``.

    Args:
        parts: name -> component (names must not contain ``.``).
        meta: the composite's own meta, stored beside the parts' (keys must not clash with part names).
    """
    tensors: dict[str, Tensor] = {}
    merged: dict[str, Any] = dict(meta or {})
    for name, part in parts.items():
        if "." in name or name in merged:
            raise ValueError(f"state part name {name!r} contains '.' or clashes with a meta key")
        part_tensors, part_meta = part.state_dict()
        tensors.update({f"{name}.{key}": value for key, value in part_tensors.items()})
        merged[name] = part_meta
    return tensors, merged


def part_of(tensors: dict[str, Tensor], meta: dict[str, Any], name: str) -> StateDict:
    """The state of part ``name`` inside a composite state made by :func:`merge_states`."""
    if name not in meta:
        raise ValueError(f"the saved state has no part {name!r} (parts: {', '.join(sorted(meta))})")
    prefix = f"{name}."
    return {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}, meta[name]


def load_parts(parts: dict[str, Stateful], tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Load every named part from a composite state (the inverse of :func:`merge_states`)."""
    for name, part in parts.items():
        part.load_state_dict(*part_of(tensors, meta, name))


def dataclass_meta(obj: Any) -> dict[str, Any]:
    """JSON-friendly fields of a flat dataclass (tuples become lists)."""
    return {
        field.name: list(value) if isinstance(value, tuple) else value
        for field in dataclasses.fields(obj)
        for value in [getattr(obj, field.name)]
    }


def dataclass_from_meta(cls: type, meta: dict[str, Any]) -> Any:
    """The inverse of :func:`dataclass_meta`: lists go back to tuples where the default is a tuple."""
    defaults = cls()
    fields = {field.name for field in dataclasses.fields(cls)}
    unknown = set(meta) - fields
    if unknown:
        raise ValueError(f"saved {cls.__name__} has unknown fields {sorted(unknown)}")
    values = {
        name: tuple(value) if isinstance(getattr(defaults, name), tuple) and isinstance(value, list) else value
        for name, value in meta.items()
    }
    return cls(**values)


class DataclassState:
    """Makes a flat dataclass instance (a position cursor, counters) :class:`Stateful` in place.

    ``load_state_dict`` checks the saved type name and assigns every saved field to the instance.
    """

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def state_dict(self) -> StateDict:
        return {}, {"type": type(self.obj).__name__, "fields": dataclass_meta(self.obj)}

    def load_state_dict(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        kind = type(self.obj).__name__
        if meta["type"] != kind:
            raise ValueError(f"the saved state is a {meta['type']}, not a {kind}")
        restored = dataclass_from_meta(type(self.obj), meta["fields"])
        for field in dataclasses.fields(self.obj):
            setattr(self.obj, field.name, getattr(restored, field.name))

