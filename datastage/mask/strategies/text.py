"""The ``regex`` strategy: masks the matches of patterns inside free text.

Each match can go to a *nested* strategy, which the policy checks like any column rule
and the engine runs like one (same domain, same redraws), so an e-mail address inside a
support ticket masks to exactly what the ``email`` column gives for it. The ``json``
strategy does the same for values at JSON paths (:mod:`datastage.mask.strategies.jsonpaths`).

Example::

    body:
      strategy: regex
      patterns:
        - {pattern: '[\\w.+-]+@[\\w-]+\\.[\\w.]+', with: email}
        - {pattern: '\\+\\d[\\d -]{7,}\\d', with: phone}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from datastage.mask.contract import Param, StrategyContext, strategy


def _regex_items(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    if params.get("patterns") is not None:
        items = params["patterns"]
        return [dict(item) if isinstance(item, Mapping) else {"pattern": item} for item in items]
    return [{k: params[k] for k in ("pattern", "replacement", "with") if params.get(k) is not None}]


def _regex_nested(params: Mapping[str, Any]) -> dict[str, Any]:
    return {f"patterns[{i}]": item["with"] for i, item in enumerate(_regex_items(params)) if "with" in item}


def _check_regex(params: Mapping[str, Any], table: Any, column: Any) -> str | None:
    if params.get("patterns") is not None and params.get("pattern") is not None:
        return "give either 'pattern' or 'patterns', not both"
    items = _regex_items(params)
    if not items or not any("pattern" in item for item in items):
        return "regex needs 'pattern' (or a list under 'patterns')"
    for i, item in enumerate(items):
        where = f"patterns[{i}]: " if params.get("patterns") is not None else ""
        extra = set(item) - {"pattern", "replacement", "with", "ignore_case"}
        if extra:
            return f"{where}unknown key '{sorted(extra)[0]}' (keys: pattern, replacement, with, ignore_case)"
        if "pattern" not in item:
            return f"{where}missing 'pattern'"
        if ("replacement" in item) == ("with" in item):
            return f"{where}give exactly one of 'replacement' (text) or 'with' (a strategy)"
        try:
            re.compile(str(item["pattern"]))
        except re.error as exc:
            return f"{where}invalid pattern: {exc}"
    return None


@strategy(
    "regex",
    params=[
        Param("pattern", str, doc="regular expression (Python syntax) to find"),
        Param("replacement", str, doc="text put in place of each match (\\1 refers to groups)"),
        Param("with", (str, dict), doc="strategy that masks each match (e.g. email, phone, tokenize)"),
        Param("ignore_case", bool, False, doc="match regardless of case"),
        Param("patterns", list, doc="several {pattern, replacement | with} items, applied in order"),
    ],
    types={"text"},
    changes=False,
    nested=_regex_nested,
    validate=_check_regex,
)
def regex(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Replace every match of a pattern with text, or mask each match with a nested strategy.

    With ``with: email`` each e-mail found in free text masks to exactly what the
    ``email`` column rule gives the same address, so the text still agrees with the
    masked columns. Example: ``body: {strategy: regex, pattern: '\\d{4}-\\d{4}', replacement: 'XXXX-XXXX'}``.
    """
    text = values.astype(str)
    for i, item in enumerate(_regex_items(ctx.params)):
        flags = re.IGNORECASE if item.get("ignore_case", ctx.params.get("ignore_case")) else 0
        pattern = re.compile(str(item["pattern"]), flags)
        if "replacement" in item:
            text = text.str.replace(pattern, str(item["replacement"]), regex=True)
            continue
        text = _replace_with(text, pattern, lambda found, i=i: ctx.apply(f"patterns[{i}]", found))
    return text.astype(object)


def _replace_with(text: pd.Series, pattern: re.Pattern[str], mask: Any) -> pd.Series:
    """Mask every match of ``pattern`` in ``text`` with one batch call of ``mask``."""
    found: list[str] = []
    spans: list[list[tuple[int, int]]] = []
    for value in text.to_numpy(dtype=object):
        row = [(m.start(), m.end()) for m in pattern.finditer(value) if m.end() > m.start()]
        spans.append(row)
        found.extend(value[a:b] for a, b in row)
    if not found:
        return text
    masked = mask(pd.Series(found, dtype=object)).to_numpy(dtype=object)
    out = []
    position = 0
    for value, row in zip(text.to_numpy(dtype=object), spans, strict=True):
        if not row:
            out.append(value)
            continue
        parts, last = [], 0
        for a, b in row:
            replacement = masked[position]
            position += 1
            parts.append(value[last:a])
            parts.append("" if replacement is None else str(replacement))
            last = b
        parts.append(value[last:])
        out.append("".join(parts))
    return pd.Series(out, index=text.index, dtype=object)
