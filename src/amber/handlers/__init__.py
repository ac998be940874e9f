"""Type handlers: every built-in handler is registered here, the inventory in one place.

Handlers for packages other than the standard library are registered by module name and
imported the first time one of their objects (or tags) is met.
"""

from amber.handlers._base import REGISTRY, DecodeContext, EncodeContext, Handler, Registry
from amber.handlers._builtins import BUILTIN_HANDLERS

for _h in BUILTIN_HANDLERS:
    REGISTRY.register(_h)

REGISTRY.register_lazy("numpy", "amber.handlers._numpy")

__all__ = ["REGISTRY", "DecodeContext", "EncodeContext", "Handler", "Registry"]
