"""Pickle islands: parts of an object that only pickle can hold (a lambda in a
``FunctionTransformer``, a closure), stored as quarantined cloudpickle blobs when the
caller asks for it with ``dump(..., allow_pickle=True)``.

Everything around an island stays native (arrays stay memory-mappable). The manifest
lists every island with its path, so a default load refuses the file before decoding
anything, naming each island; only ``load(..., allow_pickle=True)`` unpickles them.
"""

from __future__ import annotations

import pickle
from typing import Any

from amber.errors import CorruptFileError, EncodeError, PickleIslandError
from amber.handlers._base import DecodeContext, EncodeContext, Handler

__all__ = ["ISLAND"]


class _Island(Handler):
    handler_id = "pickle"

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        try:
            import cloudpickle
        except ImportError:
            raise EncodeError(
                "allow_pickle=True stores this part with cloudpickle, which is not installed: "
                "pip install 'amber[pickle]'"
            ) from None
        try:
            data = cloudpickle.dumps(obj, protocol=5)
        except Exception as exc:
            raise EncodeError(f"not even cloudpickle can save it ({type(exc).__name__}: {exc})") from None
        t = type(obj)
        return [self.tag, ctx.add_blob(memoryview(data)), f"{t.__module__}.{t.__qualname__}"]

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 3 or type(node[2]) is not str:
            raise CorruptFileError("malformed pickle island node")
        if not ctx.options.get("allow_pickle"):
            raise PickleIslandError([("here", node[2])])
        return pickle.loads(ctx.blob(node[1]).tobytes())  # the caller opted in: allow_pickle=True


ISLAND = _Island()
