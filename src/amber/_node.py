"""The node tree every format encodes: plain values plus tagged nodes.

A node is one of
* a plain value: ``None``, ``bool``, ``int`` (64-bit), ``float``, ``str``, ``bytes``;
* a list of nodes (a Python ``list``), or a map of ``str`` to nodes (a ``dict`` with only
  string keys);
* a *tagged node*: a list whose first element is a :class:`Tag`. The tag names the handler
  (``"tuple"``, ``"numpy.ndarray"``; ``"name@2"`` for version 2) and the rest of the list is
  that handler's payload.

In the native format a tag is the msgpack extension type 1 holding the UTF-8 tag text, so a
user's list can never be mistaken for a tagged node.
"""

from __future__ import annotations

from typing import Any

import msgpack

from amber.errors import CorruptFileError

__all__ = ["TAG_EXT", "Tag", "ext_hook", "tag"]

TAG_EXT = 1


class Tag:
    """A decoded node-type marker: handler ``name`` and payload ``version``."""

    __slots__ = ("name", "version", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        text = raw.decode("utf-8", "replace")
        name, sep, ver = text.rpartition("@")
        if sep and ver.isdigit() and len(ver) < 6:
            self.name, self.version = name, int(ver)
        else:
            self.name, self.version = text, 1

    def __repr__(self) -> str:
        return f"Tag({self.name!r}, {self.version})"


_TAGS: dict[bytes, Tag] = {}
_EXT: dict[tuple[str, int], msgpack.ExtType] = {}


def tag(name: str, version: int = 1) -> msgpack.ExtType:
    """The msgpack value that marks a node of handler ``name`` at ``version``."""
    ext = _EXT.get((name, version))
    if ext is None:
        text = name if version == 1 else f"{name}@{version}"
        ext = _EXT[(name, version)] = msgpack.ExtType(TAG_EXT, text.encode())
    return ext


def ext_hook(code: int, data: bytes) -> Tag:
    """msgpack ``ext_hook``: tags become :class:`Tag`; any other extension is corrupt."""
    if code != TAG_EXT:
        raise CorruptFileError(f"unknown msgpack extension type {code} in the node tree")
    t = _TAGS.get(data)
    if t is None:
        t = Tag(data)
        if len(_TAGS) < 4096:  # bounded: a hostile file may name endless distinct tags
            _TAGS[data] = t
    return t


def is_tagged(node: Any) -> bool:
    return type(node) is list and bool(node) and type(node[0]) is Tag
