"""Finds pipelines: imports the modules named by ``--pipelines`` and collects what they declare.

``--pipelines`` is a comma-separated list of directories (every ``*.py`` file in them not
starting with ``_``, in name order), ``.py`` files, or dotted module names. A directory is
added to ``sys.path`` so its modules can import their neighbours.
"""

from __future__ import annotations

from types import ModuleType

from coordinator.code_loading import import_source
from shoal.pipelines import Definitions, PipelineSpec, collecting


class PipelineLoadError(ValueError):
    """A pipeline module could not be loaded or declares something invalid."""


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
        with collecting() as found:
            modules = import_source(source, "pipeline", PipelineLoadError)
        collected = list(found.pipelines)
        for module in modules:
            for spec in _specs_of(module):
                if all(spec is not known for known in collected):
                    collected.append(spec)
        definitions.pipelines.extend(collected)
        definitions.schemas.update(found.schemas)
    return definitions
