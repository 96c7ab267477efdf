"""The server's declared dependencies are exactly what serving imports (make run installs them)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"grid", "coordinator", "shoal", "tests", "loadtests"}
# Tools a developer needs and a server never imports: they belong in the dev extra.
DEV_ONLY = {"pytest", "pytest-timeout", "mypy", "ruff", "locust", "pandas", "grpcio-tools"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return _normalized(match.group(0))


def _project(path: Path) -> dict[str, object]:
    with path.open("rb") as file:
        project: dict[str, object] = tomllib.load(file)["project"]
    return project


def _dependencies(path: Path) -> set[str]:
    requirements = _project(path)["dependencies"]
    assert isinstance(requirements, list)
    return {_requirement_name(requirement) for requirement in requirements}


def _imported_modules(folder: Path, *, top_level_only: bool) -> Iterator[str]:
    """The top-level names of every module imported by the code under `folder` (the
    generated stubs included: they import protobuf and grpcio)."""
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = tree.body if top_level_only else list(ast.walk(tree))
        for node in nodes:
            if isinstance(node, ast.Import):
                yield from (alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield node.module.split(".")[0]


def _third_party(modules: Iterator[str]) -> set[str]:
    return {
        module
        for module in modules
        if module not in sys.stdlib_module_names
        and module not in FIRST_PARTY
        and module != "__future__"
    }


@cache
def _installed_modules() -> dict[str, list[str]]:
    return dict(packages_distributions())


def _distributions_of(modules: frozenset[str] | set[str]) -> set[str]:
    """Every installed distribution that provides one of `modules` (a namespace package
    such as `opentelemetry` or `google` maps to several)."""
    provided_by = _installed_modules()
    found: set[str] = set()
    for module in modules:
        assert module in provided_by, f"{module!r} is imported but no installed package has it"
        found.update(_normalized(name) for name in provided_by[module])
    return found


@cache
def _serving_imports() -> frozenset[str]:
    """What `shoal serve` may import at run time: anything in grid/ and coordinator/ (at
    any depth: a function-level import runs too), and the SDK's module-level imports (its
    lazy ones, pyarrow and pandas for `to_arrow`/`to_pandas`, are the SDK's extras)."""
    server = _imported_modules(ROOT / "grid", top_level_only=False)
    coordinator = _imported_modules(ROOT / "coordinator", top_level_only=False)
    sdk = _imported_modules(ROOT / "clients" / "python" / "shoal", top_level_only=True)
    return frozenset(_third_party(server) | _third_party(coordinator) | _third_party(sdk))


SERVER = _dependencies(ROOT / "pyproject.toml")
SDK = _dependencies(ROOT / "clients" / "python" / "pyproject.toml")


def _optional_serving() -> set[str]:
    """Extras other than dev: what an optional part of serving (a grid backend's client,
    say) needs, installed with `pip install '.[name]'` by whoever uses it."""
    extras = _project(ROOT / "pyproject.toml").get("optional-dependencies", {})
    assert isinstance(extras, dict)
    return {
        _requirement_name(requirement)
        for name, requirements in extras.items()
        if name != "dev"
        for requirement in requirements
    }


def test_every_module_the_server_imports_is_a_serving_dependency() -> None:
    # A namespace package (opentelemetry, google) maps to several distributions; one of
    # them being declared is enough, the others come in as its dependencies.
    for module in _serving_imports():
        providers = _distributions_of({module})
        assert providers & (SERVER | SDK | _optional_serving()), (
            f"serving imports {module!r} but pyproject.toml does not depend on any of "
            f"{sorted(providers)} (nor offer it as a serving extra): `make run` would not "
            "install it"
        )


def test_every_serving_dependency_is_imported_by_the_server() -> None:
    used = _distributions_of(_serving_imports())
    unused = SERVER - used
    assert not unused, (
        f"pyproject.toml's dependencies {sorted(unused)} are not imported by the server: "
        "move them to the dev extra so `make run` does not install them"
    )


def test_dev_tools_are_not_serving_dependencies() -> None:
    assert not (SERVER | SDK) & DEV_ONLY
    dev = _project(ROOT / "pyproject.toml")["optional-dependencies"]
    assert isinstance(dev, dict)
    assert {_requirement_name(requirement) for requirement in dev["dev"]} >= DEV_ONLY
