"""Start-up of the `teamwork` command: the heavy imports run with Python's cyclic garbage collector paused.

Importing torch (and diffusers or transformers, for the diffusers backbones) creates a few hundred thousand Python
objects, nearly all of which live until the process ends; while they are created the collector's generation scans
walk them again and again, about 0.2 s of a 1 s `import torch` on a 2-core CPU. So those imports run with the
collector off, and what they made is then moved out of its reach (`gc.freeze`, Python 3.7+: the objects made once
at start-up and kept) before it is switched back on; whatever the command makes afterwards is collected as ever.

The pause is tied to the imports themselves, not to a list of commands: whichever command first imports torch does
so here, after typer has parsed its options, so `teamwork --help`, `--version` and bad usage stay torch-free.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType

HEAVY = frozenset({"torch", "diffusers", "transformers"})  # top-level packages imported with the collector paused


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off inside; after, every object alive is frozen (never scanned again) and the collector
    is back as it was. Nested pauses switch it back on once, at the outermost."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


# The import protocol's classes are duck-typed (PEP 451): plain classes, as importing importlib.abc would bring
# importlib.resources and tempfile, 14 ms of every start-up, `teamwork --help`'s included.
class _PausedLoader:
    """A package's own loader, its module executed with the collector paused; the module keeps the real loader."""

    def __init__(self, loader: object) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # The real loader back first: the package's own code may look at its __spec__ or __loader__.
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with collector_paused():
            self.loader.exec_module(module)

    def __getattr__(self, name: str) -> object:  # get_resource_reader, is_package, ...: the real loader's
        return getattr(self.loader, name)


class PausedImports:
    """Finds HEAVY's packages with the finders after it on sys.meta_path, and wraps their loaders."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in HEAVY:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PausedLoader(spec.loader)
                return spec
        return None


@contextmanager
def paused_heavy_imports() -> Iterator[None]:
    """Inside, the first import of torch, diffusers or transformers runs with the collector paused."""
    finder = PausedImports()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


__all__ = ["HEAVY", "PausedImports", "collector_paused", "paused_heavy_imports"]
