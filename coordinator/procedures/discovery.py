"""Finds procedures: imports the modules named by ``--procedures`` and collects their specs.

``--procedures`` takes what ``--pipelines`` takes: a comma-separated list of directories
(every ``*.py`` file in them not starting with ``_``, in name order), ``.py`` files, or
dotted module names. A directory is added to ``sys.path`` so its modules can import their
neighbours. Two procedures with one name are refused at start-up, naming both modules.
"""

from __future__ import annotations

from types import ModuleType

from coordinator.code_loading import import_source
from shoal.procedures import ProcedureSpec, collecting


class ProcedureLoadError(ValueError):
    """A procedure module could not be loaded, or declares something invalid."""


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
        with collecting() as collected:
            modules = import_source(source, "procedure", ProcedureLoadError)
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
