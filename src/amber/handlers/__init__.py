"""Type handlers: every built-in handler is registered here, the inventory in one place.

Handlers for packages other than the standard library are registered by module name and
imported the first time one of their objects (or tags) is met.
"""

from amber.handlers._base import REGISTRY, DecodeContext, EncodeContext, Handler, Registry
from amber.handlers._builtins import BUILTIN_HANDLERS
from amber.handlers._island import ISLAND
from amber.handlers._object import GLOBAL, OBJECT, PARTIAL, REDUCE, STATE, fallback_for

for _h in (*BUILTIN_HANDLERS, GLOBAL, OBJECT, REDUCE, STATE, PARTIAL, ISLAND):
    REGISTRY.register(_h)
REGISTRY._fallback = fallback_for

REGISTRY.register_lazy("numpy", "amber.handlers._numpy")
REGISTRY.register_lazy("pandas", "amber.handlers._pandas")
REGISTRY.register_lazy("scipy", "amber.handlers._scipy")
REGISTRY.register_lazy("sklearn", "amber.handlers._sklearn")
REGISTRY.register_lazy("torch", "amber.handlers._torch")
REGISTRY.register_lazy("lightgbm", "amber.handlers._gbm")
REGISTRY.register_lazy("xgboost", "amber.handlers._gbm")

__all__ = ["REGISTRY", "DecodeContext", "EncodeContext", "Handler", "Registry"]
