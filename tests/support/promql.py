"""The metric names a PromQL expression selects, found by tokenizing it (strings, label
matchers, ranges and durations skipped; functions, keywords and aggregation clauses told
apart from selectors), for the tests that hold dashboards and alerts to the exported
metrics. Syntax itself is promtool's business (tests/unit/test_observability_deploy.py)."""

from __future__ import annotations

import re

KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
    }
)
# Aggregation operators: `sum by (x) (...)` puts the clause between name and parenthesis.
AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
# Keywords followed by a parenthesized list of label names, not an expression.
LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})

TOKEN = re.compile(
    r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<braces>\{)
  | (?P<range>\[[^\]]*\])
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[smhdwy]?\b)
  | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<paren>[()])
  | (?P<other>\S)
    """,
    re.VERBOSE,
)


def _skip_braces(text: str, start: int) -> int:
    """The position after the `}` closing the matcher list opened at `start`."""
    position = start + 1
    while position < len(text):
        character = text[position]
        if character in "\"'`":
            end = text.index(character, position + 1)
            while text[end - 1] == "\\" and character != "`":
                end = text.index(character, end + 1)
            position = end + 1
            continue
        if character == "}":
            return position + 1
        position += 1
    raise ValueError(f"unclosed '{{' in {text!r}")


def metric_names(expression: str) -> set[str]:
    """Every metric name an expression selects."""
    names: set[str] = set()
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(expression):
        match = TOKEN.match(expression, position)
        if match is None:
            position += 1
            continue
        kind = match.lastgroup or ""
        if kind == "braces":
            position = _skip_braces(expression, match.start())
            tokens.append(("braces", "{}"))
            continue
        position = match.end()
        if kind == "other" and match.group().isspace():
            continue
        tokens.append((kind, match.group()))
    index = 0
    while index < len(tokens):
        kind, value = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else ("", "")
        if kind == "name" and value.lower() in LABEL_LISTS and following == ("paren", "("):
            # Skip the label names up to the closing parenthesis.
            index += 2
            while index < len(tokens) and tokens[index] != ("paren", ")"):
                index += 1
        elif kind == "name" and value.lower() not in KEYWORDS and following != ("paren", "("):
            aggregation = value in AGGREGATIONS and following[1].lower() in ("by", "without")
            if not aggregation:
                names.add(value)
        index += 1
    return names


def label_values_metric(query: str) -> str:
    """The metric of a Grafana variable query `label_values(metric, label)`."""
    inner = query.strip().removeprefix("label_values(").removesuffix(")")
    metric, _, _ = inner.rpartition(",")
    (name,) = metric_names(metric)
    return name


def grafana_variables_replaced(expression: str) -> str:
    """A dashboard query as Prometheus receives it (Grafana's variables filled in)."""
    return (
        expression.replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "1h")
        .replace("$instance", ".*")
    )
