"""The native container: layout, codecs, checksums, alignment, mmap and atomic writes."""

from amber.container._codecs import CODECS, Codec, resolve_compress
from amber.container._io import AtomicFile, open_sink, open_source
from amber.container._reader import ContainerReader, sniff
from amber.container._spec import FORMAT_VERSION
from amber.container._writer import ContainerWriter

__all__ = [
    "CODECS",
    "FORMAT_VERSION",
    "AtomicFile",
    "Codec",
    "ContainerReader",
    "ContainerWriter",
    "open_sink",
    "open_source",
    "resolve_compress",
    "sniff",
]
