"""scikit-learn's fitted decision trees (``sklearn.tree._tree.Tree``), the bulk of every
tree ensemble, as one compact node each. Every other scikit-learn object goes through the
generic reducer (:mod:`amber.handlers._object`).

``[sklearn.tree.Tree, {"n_features", "n_classes", "n_outputs", "max_depth", "node_count",
"nodes", "nodes_dtype", "values", "values_shape"}]``: ``nodes`` and ``values`` are blob
references (the node records and the value array, C order). On load the node record dtype
must equal the running scikit-learn's, and the tree is rebuilt with ``Tree(n_features,
n_classes, n_outputs)`` and ``__setstate__``, as unpickling does. A tree whose state has
other fields (another scikit-learn version) is saved by the generic reducer instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.tree._tree import NODE_DTYPE, Tree

from amber.errors import CorruptFileError
from amber.handlers._base import REGISTRY, DecodeContext, EncodeContext, Handler
from amber.handlers._numpy import dtype_from_node, dtype_to_node
from amber.handlers._object import REDUCE
from amber.security._guards import tree_nodes_problem

__all__ = ["TreeHandler"]

_STATE_KEYS = frozenset({"max_depth", "node_count", "nodes", "values"})
_MAX = 1 << 62


def _int(v: Any, what: str, low: int = 0) -> int:
    if type(v) is not int or not low <= v < _MAX:
        raise CorruptFileError(f"malformed sklearn.tree.Tree node: {what} is {v!r:.40}")
    return v


class TreeHandler(Handler):
    handler_id = "sklearn.tree.Tree"
    types = (Tree,)

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        rv = obj.__reduce__()
        state = rv[2] if len(rv) > 2 else None
        args = rv[1]
        if (
            type(state) is not dict
            or state.keys() != _STATE_KEYS
            or len(args) != 3
            or state["nodes"].dtype != NODE_DTYPE
        ):  # another layout than the one this handler knows: the generic way
            return REDUCE.encode(obj, ctx)
        ctx.note_package("sklearn")
        nodes = np.ascontiguousarray(state["nodes"])
        values = np.ascontiguousarray(state["values"], dtype=np.float64)
        return [
            self.tag,
            {
                "n_features": int(args[0]),
                "n_classes": [int(c) for c in np.asarray(args[1]).ravel()],
                "n_outputs": int(args[2]),
                "max_depth": int(state["max_depth"]),
                "node_count": int(state["node_count"]),
                "nodes_dtype": dtype_to_node(nodes.dtype),
                "nodes": ctx.add_blob(memoryview(nodes.reshape(-1).view(np.uint8))),
                "values_shape": list(values.shape),
                "values": ctx.add_blob(memoryview(values.reshape(-1).view(np.uint8)), ("shuffle", 8)),
            },
        ]

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 2 or type(node[1]) is not dict:
            raise CorruptFileError("malformed sklearn.tree.Tree node")
        m = node[1]
        n_features = _int(m.get("n_features"), "n_features")
        n_outputs = _int(m.get("n_outputs"), "n_outputs", 1)
        classes = m.get("n_classes")
        if type(classes) is not tuple or len(classes) != n_outputs:
            raise CorruptFileError("malformed sklearn.tree.Tree node: n_classes must list one count per output")
        n_classes = np.array([_int(c, "a class count", 1) for c in classes], dtype=np.intp)
        count = _int(m.get("node_count"), "node_count")
        if dtype_from_node(m.get("nodes_dtype")) != NODE_DTYPE:
            raise CorruptFileError(
                "the tree's node records differ from this scikit-learn's; load it with the scikit-learn "
                "version that wrote it (see amber inspect)"
            )
        shape = m.get("values_shape")
        if type(shape) is not tuple or len(shape) != 3 or shape[0] != count or shape[1] != n_outputs:
            raise CorruptFileError(f"malformed sklearn.tree.Tree node: values shape {shape!r:.60}")
        for s in shape:
            _int(s, "a values dimension")
        for ref, need in ((m.get("nodes"), count * NODE_DTYPE.itemsize), (m.get("values"), count * shape[1] * shape[2] * 8)):
            if ctx.blob_nbytes(ref) != need:
                raise CorruptFileError(f"a tree's blob holds {ctx.blob_nbytes(ref)} bytes, not {need}")
        # data only: the records are copied and checked, nothing else reads them, and the
        # load verifies every checksum before it returns (a damaged blob is named as such)
        nodes = np.frombuffer(ctx.blob(m["nodes"], data_only=True), dtype=NODE_DTYPE)
        values = np.frombuffer(ctx.blob(m["values"], data_only=True), dtype=np.float64).reshape(shape)
        max_depth = _int(m.get("max_depth"), "max_depth")
        tree = Tree(n_features, n_classes, n_outputs)
        # __setstate__ only copies the records (it follows no link); the links are checked
        # in the tree's own copy, before anything can use the tree: that copy was just
        # written and is still in the core's cache, where the file's bytes were not
        tree.__setstate__({"max_depth": max_depth, "node_count": count, "nodes": nodes, "values": values})
        own = tree.__getstate__()["nodes"]  # (a view of the tree's memory)
        problem = tree_nodes_problem(own, n_features, max_depth) if len(own) == count else "its records were not kept"
        if problem is not None:
            raise CorruptFileError(f"malformed sklearn.tree.Tree node: {problem}; predict would read outside its memory")
        return tree


REGISTRY.register(TreeHandler)
