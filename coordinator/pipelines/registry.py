"""Resolves declared pipelines into runnable ones: unique names and compiled event schemas.

``@pipeline(schema=...)`` may name an event schema registered with ``register_schema``
in a pipeline module, name a map whose schema then applies to the events, or give the
schema inline. A name is looked up in that order, once, when the pipelines start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from coordinator.pipelines.discovery import PipelineLoadError
from coordinator.pipelines.validation import EventValidator
from grid.catalog import Catalog
from grid.errors import InvalidArgument, NotFound
from grid.schema import parse_schema
from shoal.pipelines import Definitions, PipelineSpec, registered_schemas


@dataclass(frozen=True)
class Pipeline:
    spec: PipelineSpec
    validator: EventValidator | None
    # Where the event schema came from: "registered", "map", "inline" or "none".
    schema_source: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def schema_name(self) -> str:
        schema = self.spec.schema
        if schema is None:
            return ""
        return schema if isinstance(schema, str) else "(inline)"


def _validator(
    spec: PipelineSpec, schemas: Mapping[str, Any], catalog: Catalog
) -> tuple[EventValidator | None, str]:
    schema = spec.schema
    if schema is None:
        return None, "none"
    where = f"pipeline '{spec.name}'"
    if isinstance(schema, str):
        described = schemas.get(schema)
        if described is None:
            described = registered_schemas().get(schema)
        if described is not None:
            source = "registered"
        else:
            definition = catalog.find(schema)
            if definition is None or definition.schema is None:
                raise PipelineLoadError(
                    f"{where}: no event schema '{schema}' (register it with "
                    "shoal.pipelines.register_schema, or name a map that has a schema)"
                )
            return EventValidator(definition.schema, schema), "map"
        name = schema
    else:
        described, source, name = dict(schema), "inline", f"{spec.name}.inline"
    try:
        return EventValidator(parse_schema(described), name), source
    except InvalidArgument as error:
        raise PipelineLoadError(f"{where}: event schema '{name}': {error.message}") from None


def resolve(definitions: Definitions, catalog: Catalog) -> list[Pipeline]:
    """Runnable pipelines, or PipelineLoadError naming the first problem."""
    pipelines: list[Pipeline] = []
    names: set[str] = set()
    groups: dict[str, str] = {}
    for spec in definitions.pipelines:
        if spec.name in names:
            raise PipelineLoadError(f"two pipelines are named '{spec.name}'")
        names.add(spec.name)
        other = groups.get(spec.group)
        if other is not None:
            raise PipelineLoadError(
                f"pipelines '{other}' and '{spec.name}' share the consumer group '{spec.group}'"
            )
        groups[spec.group] = spec.name
        validator, source = _validator(spec, definitions.schemas, catalog)
        pipelines.append(Pipeline(spec, validator, source))
    return pipelines


class PipelineRegistry:
    def __init__(self, pipelines: Iterable[Pipeline]) -> None:
        self._pipelines = {pipeline.name: pipeline for pipeline in pipelines}

    def get(self, name: str) -> Pipeline:
        pipeline = self._pipelines.get(name)
        if pipeline is None:
            raise NotFound(f"no pipeline named '{name}'", field="name")
        return pipeline

    def names(self) -> list[str]:
        return sorted(self._pipelines)

    def __iter__(self) -> Any:
        return iter(self._pipelines.values())

    def __len__(self) -> int:
        return len(self._pipelines)
