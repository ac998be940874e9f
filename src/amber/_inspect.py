"""``amber.inspect``: what a file holds, read from its manifest alone (nothing imported)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from amber._node import is_tagged, parse_tag
from amber.container._reader import ContainerReader
from amber.errors import CorruptFileError
from amber.trust import untrusted

__all__ = ["Info", "describe", "human_size"]

#: Children listed per container before "... N more".
_SHOW = 12


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


@dataclass
class Info:
    """Everything ``inspect`` knows about a file. ``str(info)`` is the human-readable report."""

    path: str
    size: int
    format: str
    format_version: str
    amber_version: Any
    created: Any
    env: Any
    metadata: Any
    types: list[str]
    needs: list[str]
    untrusted: list[str]
    codecs: list[str]
    blobs: int
    data_bytes: int
    stored_bytes: int
    tree: dict[str, Any] = field(repr=False)
    #: parts saved as pickle islands (``dump(..., allow_pickle=True)``): path, type, reason
    islands: list[dict[str, Any]] = field(default_factory=list)
    #: what ``amber.convert`` made this file from (name, format, size, sha256)
    converted_from: Any = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=repr)

    def __str__(self) -> str:
        env = self.env if isinstance(self.env, dict) else {}
        pkgs = env.get("packages") or {}
        if self.format == "amber":
            head = f"amber format {self.format_version}"
        elif self.amber_version is not None:
            head = f"{self.format} file, amber layout {self.format_version}"
        else:
            head = f"{self.format} file"
        lines = [f"{self.path}: {head}, {human_size(self.size)}"]
        if self.amber_version is not None:
            lines.append(
                f"  written by  amber {self.amber_version}, Python {env.get('python', '?')} on {env.get('platform', '?')}"
                + (f", {self.created}" if self.created else "")
            )
        elif self.format in ("json", "jsonl"):  # amber writes plain data with no header too
            lines.append("  written by  unknown (no $amber header: plain JSON, or typed records without imports)")
        else:
            lines.append("  written by  another tool (no amber metadata)")
        if pkgs:
            lines.append("  packages    " + ", ".join(f"{k} {v or '(version unknown)'}" for k, v in pkgs.items()))
        lines.append(
            f"  data        {self.blobs} {'dataset' if self.format == 'hdf5' else 'blob'}(s), {human_size(self.data_bytes)}"
            + (
                f" -> {human_size(self.stored_bytes)} stored ({', '.join(self.codecs)})"
                if self.codecs
                else " uncompressed"
            )
        )
        lines.append("  types       " + (", ".join(self.types) or "plain data only"))
        if self.needs:
            lines.append("  imports     " + ", ".join(self.needs))
        from amber.trust import is_denied

        allowable = [n for n in self.untrusted if not is_denied(n)]
        denied = [n for n in self.untrusted if is_denied(n)]
        if allowable:
            lines.append("  UNTRUSTED   " + ", ".join(allowable) + f"  (load needs trusted={allowable!r})")
        if denied:
            lines.append("  DENIED      " + ", ".join(denied) + "  (can run code: amber never loads these)")
        for isl in self.islands:
            lines.append(
                f"  PICKLE      {isl.get('path')} ({isl.get('type')}): runs code when loaded; "
                "load needs allow_pickle=True"
            )
        if isinstance(self.converted_from, dict):
            c = self.converted_from
            lines.append(
                f"  converted   from {c.get('name')} ({c.get('format')}, {human_size(int(c.get('size') or 0))}, "
                f"sha256 {str(c.get('sha256'))[:16]}...)"
            )
        if self.metadata is not None:
            lines.append("  metadata    " + json.dumps(self.metadata, default=repr)[:2000])
        lines.append("  tree")
        _render(self.tree, "root", "    ", lines)
        return "\n".join(lines)


def _label(d: dict[str, Any]) -> str:
    t = d["type"]
    if "shape" in d:
        s = f"{t} {d.get('dtype')} {tuple(d['shape'])}"
        if "nbytes" in d:
            s += f" {human_size(d['nbytes'])}"
        if d.get("chunks"):
            s += f" chunks {tuple(d['chunks'])}"
        if d.get("codec"):
            s += f" [{d['codec']}, {human_size(d.get('stored', 0))} stored]"
        return s
    if "value" in d:
        return f"{t} = {d['value']}"
    if "len" in d:
        return f"{t} ({d['len']} item{'s' if d['len'] != 1 else ''})"
    if "target" in d:
        return f"same object as #{d['target']}"
    return t


def _render(d: dict[str, Any], name: str, indent: str, lines: list[str]) -> None:
    lines.append(f"{indent}{name}: {_label(d)}")
    kids = d.get("items")
    if not kids:
        return
    pairs = list(kids.items()) if isinstance(kids, dict) else list(enumerate(kids))
    for k, child in pairs:
        _render(child, str(k) if isinstance(kids, dict) else f"[{k}]", indent + "  ", lines)
    more = d.get("len", 0) - len(pairs)
    if more > 0:
        lines.append(f"{indent}  ... {more} more")


class _Describer:
    def __init__(self, reader: ContainerReader) -> None:
        self.reader = reader
        self.depth = 0

    def node(self, node: Any) -> dict[str, Any]:
        self.depth += 1
        try:
            if self.depth > 200:
                return {"type": "..."}
            return self._node(node)
        finally:
            self.depth -= 1

    def _node(self, node: Any) -> dict[str, Any]:
        t = type(node)
        if is_tagged(node):
            return self.tagged(node)
        if t is tuple:
            return self._seq("tuple", node)
        if t is dict:
            return self._map("dict", node)
        if t in (str, bytes):
            r = repr(node)
            return {"type": t.__name__, "value": r if len(r) <= 60 else r[:57] + "..."}
        return {"type": "NoneType" if node is None else t.__name__, "value": repr(node)}

    def _seq(self, name: str, items: Any) -> dict[str, Any]:
        return {"type": name, "len": len(items), "items": [self.node(v) for v in items[:_SHOW]]}

    def _map(self, name: str, d: dict[Any, Any]) -> dict[str, Any]:
        items = {repr(k): self.node(v) for k, v in list(d.items())[:_SHOW]}
        return {"type": name, "len": len(d), "items": items}

    def tagged(self, node: tuple[Any, ...]) -> dict[str, Any]:
        name = parse_tag(node[0]).name
        body = node[1:]
        if name in ("map", "map.plain") and len(body) == 2:
            labels = [f"<{parse_tag(k[0]).name} key>" if is_tagged(k) else repr(k) for k in body[0][:_SHOW]]
            items = {label: self.node(v) for label, v in zip(labels, body[1][:_SHOW])}
            return {"type": "dict", "len": len(body[0]), "items": items}
        if name in ("list", "list.plain"):
            return self._seq("list", body)
        if name == "ref":
            return {"type": "ref", "target": body[0] if body else None}
        if name == "seg" and len(body) == 1 and type(body[0]) is bytes:
            from amber.formats._native import unpack_tree

            return self.node(unpack_tree(body[0]))
        if name == "numpy.ndarray" and body and type(body[0]) is dict:
            meta = body[0]
            out: dict[str, Any] = {"type": "ndarray", "dtype": _dtype_text(meta.get("dtype")),
                                   "shape": list(meta.get("shape") or [])}
            blob = meta.get("blob")
            if type(blob) is int and 0 <= blob < len(self.reader.blobs):
                b = self.reader.blobs[blob]
                out["nbytes"] = b.nbytes
                if b.codec is not None:
                    out["codec"] = f"{b.codec.name} {b.codec.level}" + (f" {b.filter.name}" if b.filter else "")
                    out["stored"] = b.stored
            elif type(meta.get("data")) is bytes:
                out["nbytes"] = len(meta["data"])
            elif "items" in meta:
                items = meta.get("items") or ()
                out["items"] = [self.node(v) for v in items[:_SHOW]]
                out["len"] = len(items)
            return out
        if name in ("tuple", "set", "frozenset", "collections.deque"):
            return self._seq(name, body[1:] if name == "collections.deque" else body)
        if name in ("collections.OrderedDict", "collections.Counter", "collections.defaultdict"):
            kv = body[1:] if name == "collections.defaultdict" else body
            items = {}
            for i in range(0, min(len(kv), 2 * _SHOW) - 1, 2):
                k = kv[i]
                key = repr(k) if not isinstance(k, tuple) else f"<{self.node(k)['type']} key #{i // 2}>"
                items[key] = self.node(kv[i + 1])
            return {"type": name, "len": len(kv) // 2, "items": items}
        if name in ("numpy.scalar", "numpy.dtype") and body:
            return {"type": name, "value": _dtype_text(body[0])}
        if name in ("torch.Tensor", "torch.nn.Parameter") and body and type(body[0]) is dict:
            meta = body[0]
            out = {"type": name, "dtype": str(meta.get("dtype", meta.get("layout", "?"))),
                   "shape": list(meta.get("shape") or [])}
            st = meta.get("storage")
            if is_tagged(st) and parse_tag(st[0]).name == "torch.storage" and len(st) > 1 and type(st[1]) is dict:
                nbytes = st[1].get("nbytes")
                if type(nbytes) is int:
                    out["storage_nbytes"] = nbytes
            return out
        if name.startswith("scipy.sparse.") and body and type(body[0]) is dict and "shape" in body[0]:
            return {"type": name, "dtype": "sparse", "shape": list(body[0].get("shape") or [])}
        if name == "pickle" and len(body) > 1 and type(body[1]) is str:
            return {"type": "pickle island", "value": body[1]}
        if name in ("object", "reduce", "state", "global") and body and type(body[0]) is str:
            return {"type": body[0]} if name != "global" else {"type": "global", "value": body[0]}
        return {"type": name}


def _dtype_text(d: Any) -> str:
    if isinstance(d, str):
        return d
    if isinstance(d, dict) and "names" in d:
        return "struct{" + ", ".join(str(n) for n in d.get("names") or []) + "}"
    if isinstance(d, dict) and "base" in d:
        return f"({_dtype_text(d['base'])}, {tuple(d.get('shape') or ())})"
    return repr(d)


def describe(reader: ContainerReader) -> Info:
    from amber.formats._native import _deep_recursion, tree_of

    try:
        with _deep_recursion():
            tree = _Describer(reader).node(tree_of(reader, cached=True))
    except CorruptFileError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise CorruptFileError(f"{reader.name}: malformed node tree: {exc}") from None

    m = reader.manifest
    needs = [n for n in (m.get("needs") or []) if isinstance(n, str)]
    codecs = sorted({f"{b.codec.name}" for b in reader.blobs if b.codec is not None})
    return Info(
        path=reader.name,
        size=reader.source.size,
        format="amber",
        format_version=f"{reader.version[0]}.{reader.version[1]}",
        amber_version=m.get("amber"),
        created=m.get("created"),
        env=m.get("env"),
        metadata=m.get("metadata"),
        types=[t for t in (m.get("types") or []) if isinstance(t, str)],
        needs=needs,
        untrusted=untrusted(needs, imports=False),
        codecs=codecs,
        blobs=len(reader.blobs),
        data_bytes=sum(b.nbytes for b in reader.blobs),
        stored_bytes=sum(b.stored for b in reader.blobs),
        tree=tree,
        islands=[i for i in (m.get("islands") or []) if isinstance(i, dict)],
        converted_from=m.get("converted_from"),
    )
