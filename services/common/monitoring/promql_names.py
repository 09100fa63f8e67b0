"""The metric names a PromQL expression reads, and whether a /metrics page exports them.

Enough of PromQL for kopru's dashboards and alerts: strings, label matchers, range and
subquery brackets and grouping clauses are removed; what remains that is not a function,
a keyword or a number is a metric name.
"""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "and", "or", "unless", "atan2", "inf", "nan",
}  # fmt: skip
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_BRACES = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]")
_CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![0-9a-zA-Z_:.])[a-zA-Z_:][a-zA-Z0-9_:]*")
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum")}


def metric_names(expr: str) -> set[str]:
    text = _CLAUSE.sub(" ", _BRACES.sub(" ", _STRING.sub('""', expr)))
    names = set()
    for m in _IDENT.finditer(text):
        name = m.group(0)
        rest = text[m.end() :].lstrip()
        if name in KEYWORDS or rest.startswith("("):
            continue
        names.add(name)
    return names


def exported_names(metrics_text: str) -> set[str]:
    """Every name a query may use for the families on a /metrics page (a labelled
    family counts even before its first sample)."""
    out: set[str] = set()
    for family in text_string_to_metric_families(metrics_text):
        out.add(family.name)
        out.update(family.name + s for s in _SUFFIXES.get(family.type, ()))
        out.update(sample.name for sample in family.samples)
    return out
