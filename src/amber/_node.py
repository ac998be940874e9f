"""The node tree every format encodes: plain values plus tagged nodes.

A node is one of
* a plain value: ``None``, ``bool``, ``int`` (64-bit), ``float``, ``str``, ``bytes``;
* a list of nodes, or a map of ``str`` to nodes;
* a *tagged node*: a list whose first element is ``bytes`` holding the tag text. The tag
  names the handler (``b"tuple"``, ``b"numpy.ndarray"``; ``b"name@2"`` for version 2) and
  the rest of the list is that handler's payload.

A user's list whose first element is ``bytes`` is itself written as a tagged node
``[b"list", item0, item1, ...]``, so a list can never be mistaken for a tagged node.
(Tags are plain msgpack ``bin`` values rather than extension types because msgpack decodes
those several times faster, and tuples are common.)
"""

from __future__ import annotations

from typing import Any

import re

from amber.errors import CorruptFileError

_VERSION = re.compile(r"[1-9][0-9]{0,4}")

__all__ = ["Tag", "ext_hook", "is_tagged", "parse_tag", "tag"]


class Tag:
    """A parsed node tag: handler ``name`` and payload ``version``."""

    __slots__ = ("name", "version", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptFileError(f"node tag {raw[:40]!r} is not UTF-8 text") from None
        name, sep, ver = text.rpartition("@")
        if sep and _VERSION.fullmatch(ver):
            self.name, self.version = name, int(ver)
        else:
            self.name, self.version = text, 1

    def __repr__(self) -> str:
        return f"Tag({self.name!r}, {self.version})"


_TAGS: dict[bytes, Tag] = {}
_RAW: dict[tuple[str, int], bytes] = {}


def tag(name: str, version: int = 1) -> bytes:
    """The tag bytes that start a node of handler ``name`` at ``version``."""
    raw = _RAW.get((name, version))
    if raw is None:
        raw = _RAW[(name, version)] = (name if version == 1 else f"{name}@{version}").encode()
    return raw


def parse_tag(raw: bytes) -> Tag:
    t = _TAGS.get(raw)
    if t is None:
        t = Tag(raw)
        if len(_TAGS) < 4096:  # bounded: a hostile file may name endless distinct tags
            _TAGS[raw] = t
    return t


def ext_hook(code: int, data: bytes) -> Any:
    """msgpack ``ext_hook``: amber writes no extension types, so any one is corruption."""
    raise CorruptFileError(f"unexpected msgpack extension type {code} in the node tree")


def is_tagged(node: Any) -> bool:
    """True for a decoded tagged node: an array (tuple) whose first item is bytes."""
    return type(node) is tuple and bool(node) and type(node[0]) is bytes
