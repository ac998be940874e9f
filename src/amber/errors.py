"""Every exception and warning amber raises.

* AmberError                      base: ``except amber.AmberError`` catches anything amber raises
  - EncodeError                   an object could not be saved
    - UnsupportedTypeError        (also TypeError) no handler for a type; names where it sits
    - NestingError                nesting deeper than amber supports
  - DecodeError                   a file could not be loaded
    - FormatError                 (also ValueError) not an amber file, or a malformed one
      - CorruptFileError          checksums or declared sizes do not match the bytes
      - VersionError              written by a newer format version than this amber reads
    - UntrustedTypeError          the file needs types that are not on the trust list
    - PickleIslandError           the file holds pickled parts; loading them needs allow_pickle=True
    - SchemaError                 JSON/JSONL data does not match the JSON Schema given to load
  - StorageError                  (also OSError) reading or writing the target failed
* AmberWarning                    (UserWarning)
  - VersionMismatchWarning        a package version differs from the one that wrote the file

Every message says what went wrong, where (path, node, byte offset) and what to do.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "AmberError",
    "AmberWarning",
    "CorruptFileError",
    "DecodeError",
    "EncodeError",
    "FormatError",
    "NestingError",
    "PickleIslandError",
    "SchemaError",
    "StorageError",
    "UnsupportedTypeError",
    "UntrustedTypeError",
    "VersionError",
    "VersionMismatchWarning",
]


class AmberError(Exception):
    """Base class of every error amber raises."""


class EncodeError(AmberError):
    """An object could not be saved.

    ``path`` says where the offending object sits inside what was passed to ``dump``
    (for example ``root['model'].steps[1]``); ``detail`` says what is wrong with it.
    """

    def __init__(self, detail: str, path: str = "root") -> None:
        super().__init__(detail)
        self.detail = detail
        self.path = path

    def __str__(self) -> str:
        return f"cannot save {self.path}: {self.detail}"


class UnsupportedTypeError(EncodeError, TypeError):
    """No handler can save an object of this type (``obj_type``)."""

    def __init__(self, obj_type: type, path: str = "root", reason: str | None = None) -> None:
        self.obj_type = obj_type
        self.reason = reason or "amber has no handler for this type"
        name = f"{obj_type.__module__}.{obj_type.__qualname__}"
        if reason:
            msg = f"object of type {name!r}: {reason}"
        else:
            msg = (
                f"object of type {name!r}: amber has no handler for this type. Convert it to a "
                "supported type first (the README lists what amber saves)"
            )
        super().__init__(msg, path or "root")


class NestingError(EncodeError):
    """The structure is nested deeper than amber supports."""


class DecodeError(AmberError):
    """A file or byte string could not be loaded."""


class FormatError(DecodeError, ValueError):
    """The input is not an amber file of a readable kind, or it is malformed."""


class CorruptFileError(FormatError):
    """Checksums, declared sizes or byte ranges do not match the data."""


class VersionError(FormatError):
    """The file was written by a newer format version than this amber can read."""

    def __init__(self, found: tuple[int, int], newest: tuple[int, int], where: str = "") -> None:
        self.found = found
        self.newest = newest
        super().__init__(
            f"{where}format version {found[0]}.{found[1]} is newer than this amber reads "
            f"(up to {newest[0]}.{newest[1]}): upgrade amber (pip install -U amber) to load it"
        )


class UntrustedTypeError(DecodeError):
    """The file needs types that are not on the trust list.

    ``untrusted`` holds every such type name, sorted; nothing from the file was imported.
    ``denied`` holds those among them on the deny list, which no ``trusted=`` can admit.
    """

    def __init__(self, untrusted: Iterable[str], where: str = "", denied: Iterable[str] = ()) -> None:
        self.untrusted = tuple(sorted(set(untrusted)))
        self.denied = tuple(sorted(set(denied) & set(self.untrusted)))
        allowable = [n for n in self.untrusted if n not in self.denied]
        parts = []
        if allowable:
            parts.append(
                f"the file needs types that are not trusted: {', '.join(allowable)}. "
                f"If you trust them, pass trusted={allowable!r} to load"
            )
        if self.denied:
            parts.append(
                f"{'it also' if allowable else 'the file'} names {', '.join(self.denied)}, which amber never loads because "
                "{} can run arbitrary code: do not load this file unless you made it".format(
                    "it" if len(self.denied) == 1 else "they"
                )
            )
        super().__init__(where + "; ".join(parts))


class PickleIslandError(DecodeError):
    """The file holds "pickle islands": parts saved with ``dump(..., allow_pickle=True)``
    because only pickle could hold them (lambdas, closures). Loading them runs code from
    the file, so it needs ``load(..., allow_pickle=True)``. ``islands`` lists each one as
    ``(path, type)``."""

    def __init__(self, islands: Iterable[tuple[str, str]], where: str = "") -> None:
        self.islands = tuple(islands)
        listed = "; ".join(f"{path} ({typ})" for path, typ in self.islands[:20])
        more = f" and {len(self.islands) - 20} more" if len(self.islands) > 20 else ""
        super().__init__(
            f"{where}the file holds {len(self.islands)} pickled part{'s' if len(self.islands) != 1 else ''} "
            f"that run code when loaded: {listed}{more}. Load it with allow_pickle=True only if you "
            "trust whoever made the file"
        )


class SchemaError(DecodeError):
    """JSON or JSONL data does not match the JSON Schema passed as ``load(..., schema=)``.

    ``path`` is where it fails, as a JSON path (``$.users[3].age``); ``message`` is the
    validator's account of what is wrong there.
    """

    def __init__(self, text: str, path: str = "$", message: str = "") -> None:
        super().__init__(text)
        self.path = path
        self.message = message or text


class StorageError(AmberError, OSError):
    """Reading from or writing to the target failed."""


class AmberWarning(UserWarning):
    """Base class of amber's warnings."""


class VersionMismatchWarning(AmberWarning):
    """A package version differs (major.minor) from the one that wrote the file."""
