"""Pipeline code sent by an operator (a module's text) loaded into this coordinator.

A replay or backfill runs a pipeline module that this process may never have seen: the
production module, or a changed copy under test. Its text is written to a directory of
its own and loaded like ``--pipelines`` loads a file; a module that does not import, or
declares no pipeline, or several without saying which, is refused naming the module.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path

from coordinator.pipelines.discovery import PipelineLoadError, load_definitions
from coordinator.pipelines.registry import Pipeline, resolve
from grid.catalog import Catalog
from grid.errors import InvalidArgument

SOURCE_BYTES_MAX = 1024 * 1024
_SAFE = re.compile(r"[^A-Za-z0-9_]")


def load_pipeline(name: str, file_name: str, source: str, catalog: Catalog) -> Pipeline:
    """The pipeline `name` (or the only one) declared by the module text `source`."""
    shown = file_name or "pipeline module"
    if not source.strip():
        raise InvalidArgument("the pipeline's code is empty", field="pipeline")
    if len(source.encode()) > SOURCE_BYTES_MAX:
        raise InvalidArgument(f"{shown} is larger than {SOURCE_BYTES_MAX} bytes", field="pipeline")
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    stem = _SAFE.sub("_", Path(file_name or "pipeline.py").stem) or "pipeline"
    folder = Path(tempfile.gettempdir()) / "shoal-operator-pipelines" / digest
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.py"
    path.write_text(source)
    try:
        pipelines = resolve(load_definitions(str(path)), catalog)
    except PipelineLoadError as error:
        message = str(error).replace(str(path), shown)
        raise InvalidArgument(message, field="pipeline") from None
    except SyntaxError as error:
        raise InvalidArgument(f"{shown} does not import: {error}", field="pipeline") from None
    if not pipelines:
        raise InvalidArgument(f"{shown} declares no @pipeline function", field="pipeline")
    if name:
        for pipeline in pipelines:
            if pipeline.name == name:
                return pipeline
        known = ", ".join(pipeline.name for pipeline in pipelines)
        raise InvalidArgument(
            f"{shown} declares no pipeline named '{name}' (it declares {known})",
            field="pipeline",
        )
    if len(pipelines) > 1:
        known = ", ".join(pipeline.name for pipeline in pipelines)
        raise InvalidArgument(
            f"{shown} declares several pipelines ({known}): say which one", field="pipeline"
        )
    return pipelines[0]


def module_source(pipeline: Pipeline) -> tuple[str, str]:
    """The file name and text of the module that declares a running pipeline."""
    import sys

    module = sys.modules.get(pipeline.spec.module)
    path = getattr(module, "__file__", None)
    if not path:
        raise InvalidArgument(
            f"the code of pipeline '{pipeline.name}' is not in a file", field="pipeline"
        )
    return Path(path).name, Path(path).read_text()
