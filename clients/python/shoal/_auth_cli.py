"""`shoal auth`: tokens, grants, teams, certificate mappings and the audit log.

shoal auth token create --principal svc-orders --role writer:orders*   prints the token once
shoal auth token list [--principal P]
shoal auth token revoke TOKEN_ID | --principal P
shoal auth grant --team team-a --role owner:team-a.*     (or --principal P)
shoal auth revoke --principal P --role writer:orders*
shoal auth team add team-a svc-orders | shoal auth team remove team-a svc-orders
shoal auth cert map CN PRINCIPAL | shoal auth cert unmap CN
shoal auth describe | shoal auth whoami
shoal auth audit [--limit 50] [--principal P] [--auth-only]
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shoal._client import Client


def add_parser(commands: Any) -> None:
    auth = commands.add_parser("auth", help="tokens, grants, teams and the audit log")
    actions = auth.add_subparsers(dest="auth_command", required=True, metavar="action")

    token = actions.add_parser("token", help="create, list or revoke bearer tokens")
    token_actions = token.add_subparsers(dest="token_command", required=True, metavar="action")
    create = token_actions.add_parser("create", help="issue a token (printed once)")
    create.add_argument("--principal", required=True)
    create.add_argument(
        "--role",
        action="append",
        default=[],
        help="ROLE:PATTERN, repeatable: reader, writer, analyst, operator, owner, superuser, "
        "or one permission (read, write, sql, admin, pipelines, procedures, replay, sandbox, "
        "auth) over a map pattern like orders* or team-a.*",
    )
    create.add_argument("--team", action="append", default=[], help="team to join, repeatable")
    create.add_argument("--description", default="")
    create.add_argument("--ttl", type=int, default=0, help="seconds until it expires (0: never)")
    create.set_defaults(handler=command_token_create)
    listing = token_actions.add_parser("list", help="tokens (ids, never the tokens)")
    listing.add_argument("--principal", default="")
    listing.set_defaults(handler=command_token_list)
    revoke_token = token_actions.add_parser("revoke", help="revoke a token, or a principal's")
    revoke_token.add_argument("token_id", nargs="?", default="")
    revoke_token.add_argument("--principal", default="")
    revoke_token.set_defaults(handler=command_token_revoke)

    for name, handler, text in (
        ("grant", command_grant, "give roles to a principal or a team"),
        ("revoke", command_revoke, "take roles from a principal or a team"),
    ):
        change = actions.add_parser(name, help=text)
        change.add_argument("--principal", default="")
        change.add_argument("--team", default="")
        change.add_argument("--role", action="append", default=[], required=True)
        change.set_defaults(handler=handler)

    team = actions.add_parser("team", help="put a principal into a team, or take it out")
    team.add_argument("team_action", choices=["add", "remove"])
    team.add_argument("team")
    team.add_argument("principal")
    team.set_defaults(handler=command_team)

    cert = actions.add_parser("cert", help="map a client certificate's common name to a principal")
    cert.add_argument("cert_action", choices=["map", "unmap"])
    cert.add_argument("common_name")
    cert.add_argument("principal", nargs="?", default="")
    cert.set_defaults(handler=command_cert)

    describe = actions.add_parser("describe", help="principals, teams, grants, certificates")
    describe.set_defaults(handler=command_describe)
    whoami = actions.add_parser("whoami", help="who this token is and what it may do")
    whoami.set_defaults(handler=command_whoami)
    audit = actions.add_parser("audit", help="the newest lines of the audit log")
    audit.add_argument("--limit", type=int, default=50)
    audit.add_argument("--principal", default="")
    audit.add_argument("--auth-only", action="store_true", help="only changes to auth")
    audit.set_defaults(handler=command_audit)


def _print(arguments: argparse.Namespace, value: Any, text: str) -> None:
    print(json.dumps(value, ensure_ascii=False) if arguments.json else text)


def command_token_create(client: Client, arguments: argparse.Namespace) -> int:
    issued = client.auth.create_token(
        arguments.principal,
        arguments.role,
        teams=arguments.team,
        description=arguments.description,
        ttl_s=arguments.ttl,
    )
    if arguments.json:
        print(
            json.dumps(
                {
                    "token": issued.token,
                    "token_id": issued.token_id,
                    "principal": issued.principal,
                }
            )
        )
    else:
        # The token alone on standard output (TOKEN=$(shoal auth token create ...)).
        print(issued.token)
        print(
            f"token {issued.token_id} for {issued.principal}: shown this once, store it now",
            file=sys.stderr,
        )
    return 0


def _when(milliseconds: int) -> str:
    if not milliseconds:
        return "-"
    moment = datetime.datetime.fromtimestamp(milliseconds / 1000, tz=datetime.UTC)
    return moment.isoformat(timespec="seconds")


def command_token_list(client: Client, arguments: argparse.Namespace) -> int:
    found = client.auth.list_tokens(arguments.principal)
    lines = [
        f"{item['token_id']}  {item['principal']}  created {_when(item['created_ms'])}"
        f"  expires {_when(item['expires_ms'])}  {item['description']}".rstrip()
        for item in found
    ]
    _print(arguments, found, "\n".join(lines) if lines else "(no tokens)")
    return 0


def command_token_revoke(client: Client, arguments: argparse.Namespace) -> int:
    revoked = client.auth.revoke_token(arguments.token_id, principal=arguments.principal)
    _print(arguments, {"revoked": revoked}, f"revoked {revoked} token(s)")
    return 0


def _subject_text(subject: dict[str, Any]) -> str:
    kind = "team" if subject.get("team") else "principal"
    teams = subject.get("teams") or []
    member = f" (teams: {', '.join(teams)})" if teams else ""
    grants = ", ".join(subject["grants"]) or "no grants"
    return f"{kind} {subject['name']}{member}: {grants}"


def command_grant(client: Client, arguments: argparse.Namespace) -> int:
    subject = client.auth.grant(arguments.role, principal=arguments.principal, team=arguments.team)
    _print(arguments, subject, _subject_text(subject))
    return 0


def command_revoke(client: Client, arguments: argparse.Namespace) -> int:
    subject = client.auth.revoke(arguments.role, principal=arguments.principal, team=arguments.team)
    _print(arguments, subject, _subject_text(subject))
    return 0


def command_team(client: Client, arguments: argparse.Namespace) -> int:
    if arguments.team_action == "add":
        subject = client.auth.join_team(arguments.principal, arguments.team)
    else:
        subject = client.auth.leave_team(arguments.principal, arguments.team)
    _print(arguments, subject, _subject_text(subject))
    return 0


def command_cert(client: Client, arguments: argparse.Namespace) -> int:
    principal = arguments.principal if arguments.cert_action == "map" else ""
    if arguments.cert_action == "map" and not principal:
        print("shoal: auth cert map needs COMMON_NAME PRINCIPAL", file=sys.stderr)
        return 2
    client.auth.map_certificate(arguments.common_name, principal)
    _print(
        arguments,
        {"common_name": arguments.common_name, "principal": principal},
        f"CN={arguments.common_name} -> {principal or '(unmapped)'}",
    )
    return 0


def command_describe(client: Client, arguments: argparse.Namespace) -> int:
    described = client.auth.describe()
    lines = [_subject_text(item) for item in (*described["principals"], *described["teams"])]
    lines.extend(
        f"certificate CN={name} -> {principal}"
        for name, principal in described["certificates"].items()
    )
    _print(arguments, described, "\n".join(lines) if lines else "(nobody)")
    return 0


def command_whoami(client: Client, arguments: argparse.Namespace) -> int:
    me = client.auth.whoami()
    if not me["auth_enabled"]:
        text = "auth is off on this coordinator: every caller may do everything"
    else:
        teams = f" (teams: {', '.join(me['teams'])})" if me["teams"] else ""
        text = f"{me['principal']}{teams}: {', '.join(me['grants']) or 'no grants'}"
    _print(arguments, me, text)
    return 0


def command_audit(client: Client, arguments: argparse.Namespace) -> int:
    lines = client.auth.audit(
        arguments.limit, principal=arguments.principal, auth_only=arguments.auth_only
    )
    if arguments.json:
        for line in lines:
            print(json.dumps(line, ensure_ascii=False))
        return 0
    for line in lines:
        maps = ",".join(line.get("maps") or []) or "-"
        detail = f"  {line['detail']}" if line.get("detail") else ""
        print(
            f"{line['time']}  {line.get('principal') or '-'}  {line['action']}  {maps}  "
            f"{line.get('peer') or '-'}  {line['outcome']}{detail}"
        )
    return 0
