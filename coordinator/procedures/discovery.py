"""Finds procedures: imports the modules named by ``--procedures`` and collects their specs.

``--procedures`` takes what ``--pipelines`` takes: a comma-separated list of directories
(every ``*.py`` file in them not starting with ``_``, in name order), ``.py`` files, or
dotted module names. A directory is added to ``sys.path`` so its modules can import their
neighbours. Two procedures with one name are refused at start-up, naming both modules.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import zlib
from pathlib import Path
from types import ModuleType

from shoal.procedures import ProcedureSpec, collecting


class ProcedureLoadError(ValueError):
    """A procedure module could not be loaded, or declares something invalid."""


def _load_file(path: Path) -> ModuleType:
    digest = zlib.crc32(str(path.resolve()).encode())
    stem = "".join(character if character.isalnum() else "_" for character in path.stem)
    name = f"shoal_procedure_{stem}_{digest:08x}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ProcedureLoadError(f"cannot load procedure module {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as an import would, so dataclasses and pickling work.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _files(source: str) -> list[Path]:
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
            raise ProcedureLoadError(f"procedure file {source} does not exist")
        return [path]
    return []


def _declared_in(module: ModuleType) -> list[ProcedureSpec]:
    """Specs of decorated functions found in a module imported before (no collection)."""
    return [
        spec
        for value in vars(module).values()
        if isinstance(spec := getattr(value, "__shoal_procedure__", None), ProcedureSpec)
    ]


def load_procedures(sources: str) -> dict[str, ProcedureSpec]:
    """Imports every named module and returns its procedures by name; raises
    ProcedureLoadError naming the module at fault."""
    found: dict[str, ProcedureSpec] = {}
    for source in (item.strip() for item in sources.split(",")):
        if not source:
            continue
        modules: list[ModuleType] = []
        with collecting() as collected:
            files = _files(source)
            if files:
                for path in files:
                    try:
                        modules.append(_load_file(path))
                    except Exception as error:
                        raise ProcedureLoadError(
                            f"cannot load procedure module {path}: {type(error).__name__}: {error}"
                        ) from error
            elif Path(source).exists():
                raise ProcedureLoadError(f"{source} is neither a directory nor a .py file")
            else:
                try:
                    modules.append(importlib.import_module(source))
                except Exception as error:
                    raise ProcedureLoadError(
                        f"cannot import procedure module {source}: {type(error).__name__}: {error}"
                    ) from error
        specs = list(collected)
        for module in modules:
            specs.extend(
                spec for spec in _declared_in(module) if all(spec is not known for known in specs)
            )
        for spec in specs:
            known = found.get(spec.name)
            if known is not None and known.function is not spec.function:
                raise ProcedureLoadError(
                    f"two procedures are named '{spec.name}' (in {known.module} and {spec.module})"
                )
            found[spec.name] = spec
    return found
