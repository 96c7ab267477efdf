"""Finds pipelines: imports the modules named by ``--pipelines`` and collects what they declare.

``--pipelines`` is a comma-separated list of directories (every ``*.py`` file in them not
starting with ``_``, in name order), ``.py`` files, or dotted module names. A directory is
added to ``sys.path`` so its modules can import their neighbours.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import zlib
from pathlib import Path
from types import ModuleType

from shoal.pipelines import Definitions, PipelineSpec, collecting


class PipelineLoadError(ValueError):
    """A pipeline module could not be loaded or declares something invalid."""


def _module_name(path: Path) -> str:
    digest = zlib.crc32(str(path.resolve()).encode())
    stem = "".join(ch if ch.isalnum() else "_" for ch in path.stem)
    return f"shoal_pipeline_{stem}_{digest:08x}"


def _load_file(path: Path) -> ModuleType:
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PipelineLoadError(f"cannot load pipeline module {path}")
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
            raise PipelineLoadError(f"pipeline file {source} does not exist")
        return [path]
    return []


def _specs_of(module: ModuleType) -> list[PipelineSpec]:
    """Specs of decorated functions found in a module (for modules imported before)."""
    found = []
    for value in vars(module).values():
        spec = getattr(value, "__shoal_pipeline__", None)
        if isinstance(spec, PipelineSpec):
            found.append(spec)
    return found


def load_definitions(sources: str) -> Definitions:
    """Imports every named pipeline module and returns the pipelines and schemas they
    declare; raises PipelineLoadError naming the module at fault."""
    definitions = Definitions()
    for source in (item.strip() for item in sources.split(",")):
        if not source:
            continue
        modules: list[tuple[str, ModuleType | None]] = []
        with collecting() as found:
            files = _files(source)
            if files:
                for path in files:
                    try:
                        modules.append((str(path), _load_file(path)))
                    except PipelineLoadError:
                        raise
                    except Exception as error:
                        raise PipelineLoadError(
                            f"cannot load pipeline module {path}: {type(error).__name__}: {error}"
                        ) from error
            elif Path(source).exists():
                raise PipelineLoadError(f"{source} is neither a directory nor a .py file")
            else:
                try:
                    modules.append((source, importlib.import_module(source)))
                except Exception as error:
                    raise PipelineLoadError(
                        f"cannot import pipeline module {source}: {type(error).__name__}: {error}"
                    ) from error
        collected = list(found.pipelines)
        for _, module in modules:
            if module is None:
                continue
            for spec in _specs_of(module):
                if all(spec is not known for known in collected):
                    collected.append(spec)
        definitions.pipelines.extend(collected)
        definitions.schemas.update(found.schemas)
    return definitions
