"""Imports user code named on the command line: a directory, a ``.py`` file or a dotted module.

``--pipelines`` and ``--procedures`` name their modules the same way, so both load them here;
each passes its kind (for messages and module names) and its own error class.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import zlib
from pathlib import Path
from types import ModuleType


def _module_name(path: Path, kind: str) -> str:
    # The resolved path's digest keeps two files with one stem in different directories apart.
    digest = zlib.crc32(str(path.resolve()).encode())
    stem = "".join(character if character.isalnum() else "_" for character in path.stem)
    return f"shoal_{kind}_{stem}_{digest:08x}"


def _load_file(path: Path, kind: str, error: type[Exception]) -> ModuleType:
    name = _module_name(path, kind)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise error(f"cannot load {kind} module {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as an import would, so dataclasses and pickling work.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _files(source: str, kind: str, error: type[Exception]) -> list[Path]:
    path = Path(source)
    if path.is_dir():
        directory = str(path.resolve())
        if directory not in sys.path:
            sys.path.insert(0, directory)
        return sorted(
            item for item in path.glob("*.py") if not item.name.startswith("_") and item.is_file()
        )
    if path.suffix == ".py":
        if not path.is_file():
            raise error(f"{kind} file {source} does not exist")
        return [path]
    return []


def import_source(source: str, kind: str, error: type[Exception]) -> list[ModuleType]:
    """Imports one source: every ``*.py`` of a directory not starting with ``_`` (in name
    order, the directory added to ``sys.path`` so its modules can import their neighbours),
    one ``.py`` file, or a dotted module name. Raises ``error`` naming the module at fault."""
    files = _files(source, kind, error)
    modules: list[ModuleType] = []
    if files:
        for path in files:
            try:
                modules.append(_load_file(path, kind, error))
            except error:
                raise
            except Exception as failure:
                raise error(
                    f"cannot load {kind} module {path}: {type(failure).__name__}: {failure}"
                ) from failure
    elif Path(source).exists():
        raise error(f"{source} is neither a directory nor a .py file")
    else:
        try:
            modules.append(importlib.import_module(source))
        except Exception as failure:
            raise error(
                f"cannot import {kind} module {source}: {type(failure).__name__}: {failure}"
            ) from failure
    return modules
