"""Unpickle data files without running code from them.

A pickle can call any importable function while it loads (``os.system`` included); a data
file downloaded from somewhere should not be able to. :func:`load` admits only the globals a
format declares it needs and refuses the first other one, naming it, before it is called.
"""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle asks for a global outside the allowed set; ``name`` is ``module.name``."""

    def __init__(self, name: str) -> None:
        super().__init__(f"refused global {name}")
        self.name = name


def _numpy(module: str, name: str) -> Callable[[], Any]:
    """A resolver for a numpy global under its NumPy 2 module name (``numpy._core``), so that
    old pickles naming ``numpy.core`` resolve without NumPy's deprecation warning."""
    def resolve() -> Any:
        try:
            return getattr(importlib.import_module(module.replace("numpy.core", "numpy._core")),
                           name)
        except ImportError:  # NumPy 1
            return getattr(importlib.import_module(module), name)
    return resolve


#: what NumPy arrays need: the array and dtype classes and the helper that rebuilds an array
#: (``numpy.core`` in pickles written by NumPy 1 and Python 2, ``numpy._core`` by NumPy 2);
#: ``_codecs.encode`` is how Python 3 writes ``bytes`` at pickle protocol 2
NUMPY_ARRAYS: dict[str, Callable[[], Any]] = {
    "numpy.ndarray": _numpy("numpy", "ndarray"),
    "numpy.dtype": _numpy("numpy", "dtype"),
    **{f"{m}.multiarray._reconstruct": _numpy(f"{m}.multiarray", "_reconstruct")
       for m in ("numpy.core", "numpy._core")},
    **{f"{m}.numeric._frombuffer": _numpy(f"{m}.numeric", "_frombuffer")
       for m in ("numpy.core", "numpy._core")},
    "_codecs.encode": lambda: importlib.import_module("_codecs").encode,
}


class _Restricted(pickle.Unpickler):
    def __init__(self, file: BinaryIO, allowed: Mapping[str, Callable[[], Any]],
                 **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (e.g. __builtin__) arrive already mapped to Python 3's (fix_imports)
        key = f"{module}.{name}"
        if key not in self.allowed:
            raise RefusedGlobal(key)
        return self.allowed[key]()


def load(
    file: BinaryIO, allowed: Mapping[str, Callable[[], Any]] = NUMPY_ARRAYS,
    encoding: str = "ASCII",
) -> Any:
    """``pickle.load(file)`` that builds only plain containers, numbers, strings and bytes,
    plus the globals in ``allowed`` (``"module.name"`` -> a function returning the object).

    Raises:
        RefusedGlobal: the pickle asks for anything else (nothing of it was called).
    """
    return _Restricted(file, allowed, encoding=encoding).load()
