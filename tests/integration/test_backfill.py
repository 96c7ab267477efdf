"""Backfills from files through a pipeline into a real coordinator: once per file, resumed
after an interruption, rejected rows reported with their row, rule and field."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shoal import Client, InvalidArgumentError
from tests.support.kafka import wait_until
from tests.support.pipeline_server import check_grid
from tests.support.pipeline_workload import expected_of, generate, write_pipeline
from tests.support.replay import grid_checksums, seed_orders_maps
from tests.support.server_process import REPO_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def grid(fresh_server):
    fresh_server.start()
    seed_orders_maps(fresh_server.target)
    return fresh_server


def pipeline_file(folder):
    write_pipeline(folder, topic="orders-backfill", group="orders-backfill", batch_max=500)
    return folder / "orders.py"


def tabular_workload(count, seed):
    """Messages whose values are JSON objects of one shape per column (Parquet needs it):
    no malformed JSON, no amount given as text."""
    workload = generate(count * 2, seed=seed, invalid_fraction=0.04, duplicate_fraction=0.05)
    kept = []
    for message in workload.messages:
        try:
            document = json.loads(message.value)
        except json.JSONDecodeError:
            continue
        if not isinstance(document.get("amount", 0), int):
            continue
        kept.append(message)
        if len(kept) == count:
            break
    return kept


def write_parquet(path, messages):
    rows = [json.loads(message.value) for message in messages]
    columns = ("id", "order", "region", "amount", "customer")
    table = pa.table({name: [row.get(name) for row in rows] for name in columns})
    pq.write_table(table, path)


def test_the_same_parquet_file_applies_once(tmp_path, grid):
    messages = tabular_workload(3000, seed=11)
    expected = expected_of(messages)
    source = tmp_path / "orders-2026-11-24.parquet"
    write_parquet(source, messages)
    with Client(grid.target, timeout_s=60) as client:
        first = client.backfill(source, pipeline=pipeline_file(tmp_path / "pipelines"))
        assert not first.already_done
        assert first.rows == len(messages)
        assert first.applied == len(expected.orders)
        assert first.rejected == len(expected.dead)
        assert first.duplicates == expected.duplicates
        check_grid(grid.target, expected)
        # Every rejected row is named with its row (1-based), rule and field.
        rows = {reject.row: reject for reject in first.rejects}
        for row, reject in rows.items():
            key = messages[row - 1].key.decode()
            assert expected.dead[key] == reject.rule, (row, reject)
        assert {messages[row - 1].key.decode() for row in rows} == set(expected.dead)
        assert any(reject.field for reject in first.rejects)
        written = [
            json.loads(line) for line in Path(first.dead_letter_file).read_text().splitlines()
        ]
        assert [item["row"] for item in written] == sorted(rows)
        assert {item["file"] for item in written} == {source.name}
        before = grid_checksums(grid.target)
        again = client.backfill(source, pipeline=pipeline_file(tmp_path / "pipelines"))
        assert again.already_done and again.id == first.id
        assert again.applied == first.applied
        assert grid_checksums(grid.target) == before


def test_a_backfill_killed_halfway_resumes_and_ends_exact(tmp_path, grid):
    workload = generate(6000, seed=12, invalid_fraction=0.03, duplicate_fraction=0.05)
    expected = expected_of(workload.messages)
    source = tmp_path / "orders.jsonl"
    source.write_bytes(b"\n".join(message.value for message in workload.messages) + b"\n")
    pipeline = pipeline_file(tmp_path / "pipelines")
    command = [
        sys.executable,
        "-m",
        "shoal.cli",
        "--target",
        grid.target,
        "--json",
        "backfill",
        "--pipeline",
        str(pipeline),
        "--file",
        str(source),
        "--rows-per-call",
        "100",
    ]
    first = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        with Client(grid.target) as client:
            wait_until(
                lambda: client.describe_map("orders").entries > 0,
                timeout_s=120,
                interval_s=0.05,
                what="the first rows applied",
            )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        first.stdout.close()
    rerun = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert not summary["already_done"]
    assert 0 < summary["resumed_from_row"] < len(workload.messages)
    assert summary["applied"] == len(expected.orders)
    assert summary["rejected"] == len(expected.dead)
    check_grid(grid.target, expected)


def test_bad_backfills_are_refused_naming_the_problem(tmp_path, grid):
    pipeline = pipeline_file(tmp_path / "pipelines")
    text = tmp_path / "orders.txt"
    text.write_text("{}\n")
    fake = tmp_path / "orders.parquet"
    fake.write_text("not parquet at all\n")
    rows = tmp_path / "orders.jsonl"
    rows.write_text('{"id": "e1", "order": "o1", "region": "eu", "amount": 1, "customer": "c1"}\n')
    broken = tmp_path / "broken.py"
    broken.write_text("def apply(:\n")
    before = grid_checksums(grid.target)
    with Client(grid.target) as client:
        cases = [
            (text, pipeline, "unsupported file format '.txt'"),
            (fake, pipeline, "orders.parquet is not a readable PARQUET file"),
            (tmp_path / "absent.csv", pipeline, "does not exist"),
            (rows, broken, "broken.py"),
        ]
        for source, code, named in cases:
            with pytest.raises(InvalidArgumentError) as raised:
                client.backfill(source, pipeline=code)
            assert named in str(raised.value), raised.value
    assert grid_checksums(grid.target) == before
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "shoal.cli",
            "--target",
            grid.target,
            "backfill",
            "--pipeline",
            str(pipeline),
            "--file",
            str(text),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode != 0 and "unsupported file format" in completed.stderr


def test_a_backfill_into_a_sandbox_leaves_production_alone(tmp_path, grid):
    workload = generate(500, seed=13, invalid_fraction=0.05, duplicate_fraction=0.05)
    expected = expected_of(workload.messages)
    source = tmp_path / "orders.jsonl"
    source.write_bytes(b"\n".join(message.value for message in workload.messages) + b"\n")
    with Client(grid.target, timeout_s=60) as client:
        client.sandboxes.create("backfill-test", from_snapshot=True, maps=["customers"])
        with client.sandbox("backfill-test") as sandbox:
            sandbox.create_map("orders")
            sandbox.create_map("revenue")
            sandbox_target = sandbox.targets[0]
        before = grid_checksums(grid.target)
        summary = client.backfill(
            source, pipeline=pipeline_file(tmp_path / "pipelines"), sandbox="backfill-test"
        )
        assert summary.applied == len(expected.orders)
        check_grid(sandbox_target, expected)
        assert grid_checksums(grid.target) == before
        client.sandboxes.delete("backfill-test")


def test_a_csv_with_a_bad_row(tmp_path, grid):
    """A row whose amount is not a number is rejected alone, naming its row and field (its
    column stays numeric); a row with too few columns refuses the file naming its row."""
    pipeline = pipeline_file(tmp_path / "pipelines")
    header = "id,order,region,amount,customer\n"
    typed = tmp_path / "typed.csv"
    typed.write_text(
        header + "e1,o1,eu,5,c1\ne2,o2,eu,lots,c1\ne3,o3,us,7,c2\ne4,o4,eu,02,c1\ne5,o5,us,9,c2\n"
    )
    short = tmp_path / "short.csv"
    short.write_text(header + "e6,o6,eu,5,c1\ne7,o7,eu\n")
    with Client(grid.target) as client:
        summary = client.backfill(typed, pipeline=pipeline)
        assert (summary.applied, summary.rejected) == (3, 2), summary
        assert [(item.row, item.rule, item.field) for item in summary.rejects] == [
            (2, "type", "amount"),
            (4, "type", "amount"),  # 02 is kept as text: a code, not the number 2
        ]
        assert client.get("orders", "o1")["amount"] == 5
        assert client.get("orders", "o2") is None
        before = grid_checksums(grid.target)
        with pytest.raises(InvalidArgumentError) as raised:
            client.backfill(short, pipeline=pipeline)
        assert "short.csv" in str(raised.value) and "row 2 has 3 columns" in str(raised.value)
        assert raised.value.field == "file"
        assert grid_checksums(grid.target) == before


def test_rejects_with_nowhere_to_go_refuse_the_backfill_before_it_applies(tmp_path, grid):
    """A dead-letter path in a missing directory, or a bad rows_per_call, is refused before
    anything is applied: once a file is done, a re-run is a no-op and its rejected rows
    would be lost."""
    pipeline = pipeline_file(tmp_path / "pipelines")
    source = tmp_path / "orders.jsonl"
    source.write_text(
        '{"id": "e1", "order": "o1", "region": "eu", "amount": -1, "customer": "c1"}\n'
    )
    before = grid_checksums(grid.target)
    with Client(grid.target) as client:
        with pytest.raises(InvalidArgumentError, match="missing") as nowhere:
            client.backfill(
                source, pipeline=pipeline, dead_letters=tmp_path / "missing" / "x.jsonl"
            )
        assert nowhere.value.field == "dead_letters"
        for rows_per_call in (0, -1, 10_001):
            with pytest.raises(InvalidArgumentError) as bad_size:
                client.backfill(source, pipeline=pipeline, rows_per_call=rows_per_call)
            assert bad_size.value.field == "rows_per_call"
        assert grid_checksums(grid.target) == before
        summary = client.backfill(source, pipeline=pipeline, dead_letters=tmp_path / "x.jsonl")
        assert (summary.rejected, summary.already_done) == (1, False)
        assert [
            json.loads(line)["row"] for line in (tmp_path / "x.jsonl").read_text().splitlines()
        ] == [1]


def test_a_pipeline_that_does_not_import_is_refused_even_for_a_file_already_done(tmp_path, grid):
    pipeline = pipeline_file(tmp_path / "pipelines")
    source = tmp_path / "orders.jsonl"
    source.write_text(
        '{"id": "e1", "order": "o1", "region": "eu", "amount": 3, "customer": "c1"}\n'
    )
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_anywhere\n")
    with Client(grid.target) as client:
        assert client.backfill(source, pipeline=pipeline).applied == 1
        with pytest.raises(InvalidArgumentError, match="no_such_module_anywhere") as raised:
            client.backfill(source, pipeline=broken)
        assert raised.value.field == "pipeline"
        assert client.backfill(source, pipeline=pipeline).already_done
