import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """``(module name, marker path)``: a module, not yet imported, that leaves the marker file
    behind when it is imported (classes ``Zeta`` and ``Alpha``, functions ``helper`` and
    ``factory``). A test shows nothing was imported by the marker's absence."""
    name = f"amber_canary_{uuid.uuid4().hex[:12]}"
    marker = tmp_path / "IMPORTED"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            f"""
            import pathlib
            pathlib.Path({str(marker)!r}).write_text("imported")

            class Zeta:
                def __init__(self, v):
                    self.v = v

            class Alpha:
                def __init__(self, v):
                    self.v = v

            def helper(x):
                return x

            def factory():
                return "made"
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    yield name, marker
    sys.modules.pop(name, None)
