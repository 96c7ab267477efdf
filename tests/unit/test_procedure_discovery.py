"""Loading procedure modules (`--procedures`) and what `@procedure` accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coordinator.procedures.discovery import ProcedureLoadError, load_procedures
from shoal.procedures import procedure

MODULE = '''
from shoal.procedures import procedure

@procedure(name="{name}")
def run(tx, a, b=2):
    """Adds two numbers.

    More words.
    """
    return a + b
'''


def write(directory: Path, file_name: str, name: str) -> Path:
    path = directory / file_name
    path.write_text(MODULE.format(name=name))
    return path


def test_a_directory_loads_every_public_module(tmp_path: Path) -> None:
    write(tmp_path, "first.py", "first")
    write(tmp_path, "second.py", "second")
    write(tmp_path, "_private.py", "private")
    found = load_procedures(str(tmp_path))
    assert sorted(found) == ["first", "second"]
    assert found["first"].parameters == "a, b=2"
    assert found["first"].description == "Adds two numbers."
    assert found["first"].function(None, 1) == 3


def test_files_and_directories_combine(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    write(tmp_path / "one", "a.py", "from_dir")
    single = write(tmp_path, "single.py", "from_file")
    found = load_procedures(f"{tmp_path / 'one'}, {single}")
    assert sorted(found) == ["from_dir", "from_file"]


def test_two_procedures_with_one_name_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "first.py", "same")
    write(tmp_path, "second.py", "same")
    with pytest.raises(ProcedureLoadError, match="two procedures are named 'same'"):
        load_procedures(str(tmp_path))


def test_a_module_that_fails_to_import_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_module_anywhere\n")
    with pytest.raises(
        ProcedureLoadError, match=r"cannot load procedure module \S*broken\.py: ModuleNotFoundError"
    ):
        load_procedures(str(broken))
    with pytest.raises(ProcedureLoadError, match=r"procedure file \S*missing\.py does not exist"):
        load_procedures(str(tmp_path / "missing.py"))
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(
        ProcedureLoadError, match=r"notes\.txt is neither a directory nor a \.py file"
    ):
        load_procedures(str(tmp_path / "notes.txt"))
    with pytest.raises(ProcedureLoadError, match=r"cannot import procedure module no\.such"):
        load_procedures("no.such")


def test_the_decorator_refuses_what_cannot_be_a_procedure() -> None:
    with pytest.raises(ValueError, match="procedure name"):
        procedure(name="has space")

    async def coroutine(tx: Any) -> None:
        return None

    with pytest.raises(TypeError, match="not async"):
        procedure(name="c")(coroutine)

    def no_transaction() -> None:
        return None

    with pytest.raises(TypeError, match="first argument"):
        procedure(name="n")(no_transaction)

    def keyword_only(*, tx: Any) -> None:
        return None

    with pytest.raises(TypeError, match="first argument"):
        procedure(name="k")(keyword_only)
