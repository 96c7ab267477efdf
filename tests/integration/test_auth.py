"""Authentication and permissions on a real coordinator: the first admin, SQL that may
not reach a map through any shape of statement, revocation on a live connection,
guessing rate-limited, procedures, teams, the audit log, and no token in any log."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal import (
    Client,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
)
from tests.support.secured import BOOTSTRAP_TOKEN, secured_server
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.integration

REVOCATION_S = 1.0
WAIT_S = 30.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    started = secured_server(Path(tmp_path_factory.mktemp("auth")) / "data").start()
    try:
        with Client(started.target, token=BOOTSTRAP_TOKEN) as admin:
            admin.create_map("orders", schema={"customer": "string", "total": "int"})
            admin.create_map("customers", schema={"name": "string", "secret": "string"})
            admin.put("orders", "o1", {"customer": "c1", "total": 5})
            admin.put("customers", "c1", {"name": "Ada", "secret": "s3cr3t"})
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def orders_only(server: ServerProcess) -> str:
    with Client(server.target, token=BOOTSTRAP_TOKEN) as admin:
        return admin.auth.create_token("svc-orders", ["writer:orders", "sql:orders"]).token


def test_without_a_token_every_call_is_unauthenticated_and_says_nothing_more(
    server: ServerProcess,
) -> None:
    with Client(server.target) as anonymous, pytest.raises(UnauthenticatedError) as missing:
        anonymous.get("orders", "o1")
    with (
        Client(server.target, token="shoal_0123456789ab_notarealsecret") as guesser,
        pytest.raises(UnauthenticatedError) as wrong,
    ):
        guesser.get("orders", "o1")
    # The same words whether the token is missing, unknown or wrong.
    assert missing.value.message == wrong.value.message
    assert "0123456789ab" not in wrong.value.message


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT o.total, c.secret FROM orders o JOIN customers c ON o.customer = c.__key",
        "SELECT * FROM orders WHERE customer IN (SELECT __key FROM customers)",
        "SELECT (SELECT max(secret) FROM customers) AS s FROM orders",
        "WITH c AS (SELECT * FROM customers) SELECT * FROM c",
        "WITH orders AS (SELECT secret AS total FROM customers) SELECT * FROM orders",
        "SELECT customer FROM orders UNION SELECT secret FROM customers",
        "EXPLAIN SELECT * FROM customers",
        "SELECT * FROM orders WHERE EXISTS (SELECT 1 FROM customers WHERE secret = 's3cr3t')",
        "INSERT INTO orders SELECT __key, secret, 1 FROM customers",
        # A CTE named like the map, in scope only inside its own subquery.
        "SELECT * FROM customers, (WITH customers AS (SELECT 1 AS x) SELECT * FROM customers) q",
        # Inside a non-recursive CTE's own body its name is the map.
        "WITH customers AS (SELECT * FROM customers) SELECT * FROM customers",
    ],
)
def test_sql_cannot_reach_a_map_the_principal_may_not_query(
    server: ServerProcess, orders_only: str, statement: str
) -> None:
    with (
        Client(server.target, token=orders_only) as client,
        pytest.raises(PermissionDeniedError) as denied,
    ):
        client.sql(statement).fetchall()
    assert denied.value.message == (
        "principal 'svc-orders' lacks permission 'sql' on map 'customers'"
    )


def test_a_map_named_like_another_but_for_case_reads_only_its_own_rows(
    server: ServerProcess,
) -> None:
    """DuckDB's names are case-blind: the pooled connections must not answer `Cases` with
    the rows of `cases` that another caller registered since."""
    with Client(server.target, token=BOOTSTRAP_TOKEN) as admin:
        admin.create_map("cases", schema={"secret": "string"})
        admin.create_map("Cases", schema={"secret": "string"})
        admin.put("cases", "c1", {"secret": "theirs"})
        admin.put("Cases", "m1", {"secret": "mine"})
        own = admin.auth.create_token("svc-cased", ["sql:Cases"]).token
        with Client(server.target, token=own) as client:
            for _ in range(8):
                assert client.sql("SELECT __key, secret FROM Cases").fetchall() == [("m1", "mine")]
                assert admin.sql("SELECT __key FROM cases").fetchall() == [("c1",)]
        with pytest.raises(InvalidArgumentError, match="differ only in case"):
            admin.sql('SELECT * FROM cases, "Cases"').fetchall()


def test_sql_on_the_allowed_map_runs(server: ServerProcess, orders_only: str) -> None:
    with Client(server.target, token=orders_only) as client:
        assert client.sql("SELECT total FROM orders WHERE __key = 'o1'").fetchall() == [(5,)]
        assert client.get("orders", "o1") == {"customer": "c1", "total": 5}
        with pytest.raises(PermissionDeniedError, match="'read' on map 'customers'"):
            client.get("customers", "c1")
        with pytest.raises(PermissionDeniedError, match="'admin' on map 'orders'"):
            client.drop_map("orders")


def test_listings_show_only_the_maps_a_principal_holds_a_permission_on(
    server: ServerProcess, orders_only: str
) -> None:
    with Client(server.target, token=BOOTSTRAP_TOKEN) as admin:
        admin.sketches.create("customers-seen", "hll", if_not_exists=True)
        everything = {info.name for info in admin.list_maps()}
        sketches = {info.name for info in admin.sketches.list()}
    assert {"orders", "customers"} <= everything
    assert "customers-seen" in sketches
    with Client(server.target, token=orders_only) as client:
        # customers' schema and size are what describing it needs `read` for.
        assert {info.name for info in client.list_maps()} == {"orders"}
        assert "customers-seen" not in {info.name for info in client.sketches.list()}


def test_a_transaction_is_checked_on_every_map_it_touches(
    server: ServerProcess, orders_only: str
) -> None:
    with Client(server.target, token=orders_only) as client:
        with (
            pytest.raises(PermissionDeniedError, match="'write' on map 'customers'"),
            client.transaction() as tx,
        ):
            tx.put("orders", "o2", {"customer": "c1", "total": 1})
            tx.put("customers", "c9", {"name": "x", "secret": "y"})
        assert client.get("orders", "o2") is None


def test_revocation_ends_a_live_connection_within_a_second(server: ServerProcess) -> None:
    with Client(server.target, token=BOOTSTRAP_TOKEN) as admin:
        issued = admin.auth.create_token("svc-revoked", ["reader:orders"])
        with Client(server.target, token=issued.token) as client:
            assert client.get("orders", "o1") is not None  # verified, cached, connected
            assert client.get("orders", "o1") is not None
            revoked_at = time.monotonic()
            assert admin.auth.revoke_token(issued.token_id) == 1
            refused_at = None
            while time.monotonic() - revoked_at < WAIT_S:
                try:
                    client.get("orders", "o1")  # the same channel, still open
                except UnauthenticatedError:
                    refused_at = time.monotonic()
                    break
                time.sleep(0.02)
    assert refused_at is not None, "the revoked token kept working"
    # The snapshot of the auth map is re-read every 250 ms; a loaded machine gets slack.
    assert refused_at - revoked_at < REVOCATION_S * 3


def test_revocation_ends_a_stream_in_progress(server: ServerProcess) -> None:
    with Client(server.target, token=BOOTSTRAP_TOKEN) as admin:
        admin.create_map("streamed")
        # About 1 MB: more than gRPC's flow-control windows hold, so most of the stream is
        # still to be written when the revocation is in force.
        pad = "x" * 500
        admin.put_many("streamed", {f"k{i:04}": {"i": i, "pad": pad} for i in range(2000)})
        issued = admin.auth.create_token("svc-streaming", ["reader:streamed"])
        with Client(server.target, token=issued.token) as client:
            rows = client.scan("streamed", chunk_entries=10)
            next(rows)
            admin.auth.revoke_token(issued.token_id)
            # Waits for the revocation to be in force (a new call refused), not a fixed time;
            # the stream stays paused meanwhile.
            deadline = time.monotonic() + WAIT_S
            while True:
                try:
                    client.get("streamed", "k0000")
                except UnauthenticatedError:
                    break
                assert time.monotonic() < deadline, "the revoked token kept working"
                time.sleep(0.02)
            with pytest.raises(UnauthenticatedError, match="revoked"):
                for _ in rows:
                    pass


def test_guessing_is_rate_limited_per_peer(tmp_path: Path) -> None:
    fresh = secured_server(tmp_path / "data").start()
    try:
        with Client(fresh.target, token=BOOTSTRAP_TOKEN) as admin:
            admin.create_map("guarded")
            # Valid, but never presented before the address is blocked.
            unused = admin.auth.create_token("svc-unused", ["reader:guarded"]).token
        limited = None
        for attempt in range(100):
            with Client(fresh.target, token=f"shoal_{attempt:012x}_guess") as guesser:
                try:
                    guesser.get("guarded", "k")
                except UnauthenticatedError:
                    continue
                except ResourceExhaustedError as error:
                    limited = (attempt, error.message)
                    break
        assert limited is not None, "100 wrong tokens were all checked"
        attempt, message = limited
        assert attempt <= 25
        assert "too many failed authentication attempts" in message
        # While blocked, a token not verified before is refused unchecked (it could be
        # a guess) ...
        with (
            Client(fresh.target, token=unused) as late,
            pytest.raises(ResourceExhaustedError),
        ):
            late.get("guarded", "k")
        # ... but the guesser does not lock out a client already signed in from its address.
        with Client(fresh.target, token=BOOTSTRAP_TOKEN) as admin:
            assert admin.get("guarded", "k") is None
    finally:
        fresh.kill()


def test_teams_own_their_maps_and_nobody_elses(server: ServerProcess) -> None:
    with Client(server.target, token=BOOTSTRAP_TOKEN) as admin:
        admin.auth.grant(["owner:team-a.*"], team="team-a")
        member = admin.auth.create_token("alice", [], teams=["team-a"]).token
        admin.create_map("team-b.ledger")
    with Client(server.target, token=member) as alice:
        alice.create_map("team-a.ledger")
        alice.put("team-a.ledger", "k", {"n": 1})
        assert alice.sql('SELECT count(*) FROM "team-a.ledger"').fetchall() == [(1,)]
        with pytest.raises(PermissionDeniedError, match=r"'admin' on map 'team-b\.ledger'"):
            alice.drop_map("team-b.ledger")
        with pytest.raises(PermissionDeniedError, match=r"'read' on map 'team-b\.ledger'"):
            alice.get("team-b.ledger", "k")
        assert alice.auth.whoami()["teams"] == ["team-a"]
    with Client(server.target, token=BOOTSTRAP_TOKEN) as admin:
        admin.auth.leave_team("alice", "team-a")
    with Client(server.target, token=member) as alice:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                alice.get("team-a.ledger", "k")
            except PermissionDeniedError:
                break
            assert time.monotonic() < deadline, "leaving the team kept its grants"
            time.sleep(0.05)


def test_the_auth_map_is_readable_only_with_the_auth_permission(
    server: ServerProcess,
) -> None:
    with Client(server.target, token=BOOTSTRAP_TOKEN) as admin:
        reader = admin.auth.create_token("everything-reader", ["reader:*", "sql:*"]).token
    with Client(server.target, token=reader) as client:
        with pytest.raises(PermissionDeniedError, match="'auth'"):
            list(client.scan("__auth"))
        with pytest.raises(PermissionDeniedError, match="'auth'"):
            client.sql("SELECT * FROM __auth").fetchall()
        with pytest.raises(PermissionDeniedError, match="'auth'"):
            client.auth.create_token("mallory", ["superuser:*"])


def test_audit_log_holds_denials_and_auth_changes_and_never_a_token(
    server: ServerProcess, orders_only: str
) -> None:
    with (
        Client(server.target, token=orders_only) as client,
        pytest.raises(PermissionDeniedError),
    ):
        client.get("customers", "c1")
    with Client(server.target, token=BOOTSTRAP_TOKEN) as admin:
        issued = admin.auth.create_token("svc-audited", ["reader:orders"])
        lines = admin.auth.audit(1000)
        changes = admin.auth.audit(1000, auth_only=True)
    denial = [
        line
        for line in lines
        if line["outcome"] == "denied"
        and line["principal"] == "svc-orders"
        and line["maps"] == ["customers"]
    ]
    assert denial, lines[-5:]
    assert denial[-1]["action"] == "/shoal.v1.Data/Get"
    assert denial[-1]["peer"] == "127.0.0.1"
    assert {"time", "principal", "action", "maps", "peer", "outcome"} <= set(denial[-1])
    with Client(server.target, token=BOOTSTRAP_TOKEN) as admin:
        admin.sql("CREATE TABLE audited_ddl (n INTEGER)").fetchall()
        ddl = [
            line
            for line in admin.auth.audit(1000)
            if line["action"] == "/shoal.v1.Query/Execute" and line["maps"] == ["audited_ddl"]
        ]
    assert ddl and ddl[-1]["outcome"] == "allowed"
    created = [line for line in changes if issued.token_id in line.get("detail", "")]
    assert created and created[-1]["principal"] == "admin"
    assert all(line["action"].startswith("/shoal.v1.Auth/") for line in changes)
    audit_text = (server.data_dir / "audit.log").read_text()
    assert issued.token not in audit_text and BOOTSTRAP_TOKEN not in audit_text
    assert all(json.loads(line) for line in audit_text.splitlines())
    assert (server.data_dir / "audit.log").stat().st_mode & 0o077 == 0


def test_no_token_reaches_the_server_log(server: ServerProcess, orders_only: str) -> None:
    with Client(server.target, token=BOOTSTRAP_TOKEN) as admin:
        issued = admin.auth.create_token("svc-logged", ["reader:orders"])
        listed = admin.auth.list_tokens("svc-logged")
    with Client(server.target, token=issued.token) as client:
        client.get("orders", "o1")
        with pytest.raises(PermissionDeniedError) as denied:
            client.get("customers", "c1")
    assert issued.token not in denied.value.message
    assert issued.token not in repr(issued)
    assert all(issued.token not in json.dumps(item) for item in listed)
    assert server.log_path is not None
    log = server.log_path.read_text()
    assert "shoal serving on" in log  # it is the server's log
    for secret in (issued.token, orders_only, BOOTSTRAP_TOKEN):
        assert secret not in log
        # Nor its secret part alone.
        assert secret.rsplit("_", 1)[-1] not in log


def test_the_first_admin_is_printed_once_and_never_logged(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path / "data", extra_args=["--auth", "on"]).start()
    try:
        printed = [line for line in first.output if line.startswith("SHOAL_BOOTSTRAP_TOKEN ")]
        assert len(printed) == 1
        token = printed[0].split()[1]
        with Client(first.target, token=token) as admin:
            assert admin.auth.whoami()["principal"] == "admin"
    finally:
        # Killed: what was acknowledged (the first admin) is in the log, as after a crash.
        first.kill()
    again = ServerProcess(tmp_path / "data", extra_args=["--auth", "on"]).start()
    try:
        assert not any("SHOAL_BOOTSTRAP_TOKEN" in line for line in again.output)
        with Client(again.target, token=token) as admin:
            assert "auth:*" in admin.auth.whoami()["grants"]
    finally:
        again.kill()
    assert again.log_path is not None
    assert token not in again.log_path.read_text()


def test_procedure_listings_show_only_what_the_caller_may_call(tmp_path: Path) -> None:
    from tests.support.server_process import REPO_ROOT

    samples = str(REPO_ROOT / "tests/support/procedure_samples.py")
    fresh = secured_server(tmp_path / "data", "--procedures", samples).start()
    try:
        with Client(fresh.target, token=BOOTSTRAP_TOKEN) as admin:
            everything = {item["name"] for item in admin.procedures()}
            counter = admin.auth.create_token("svc-counter", ["procedures:co*"]).token
        assert {"count", "refuse", "spin", "noop"} <= everything
        with Client(fresh.target, token=counter) as client:
            assert {item["name"] for item in client.procedures()} == {"count"}
            # Nor does an unknown name list the others.
            with pytest.raises(NotFoundError) as missing:
                client.call("counter")
            assert missing.value.message == "no procedure named 'counter'"
    finally:
        fresh.kill()
