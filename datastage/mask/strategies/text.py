"""Strategies that mask parts of a value: ``regex`` (matches in free text) and ``json`` (paths).

Both can hand the parts to a *nested* strategy, which the policy checks like any column
rule and the engine runs like one (same domain, same redraws), so an e-mail address
inside a support ticket masks to exactly what the ``email`` column gives for it.

Example::

    body:
      strategy: regex
      patterns:
        - {pattern: '[\\w.+-]+@[\\w-]+\\.[\\w.]+', with: email}
        - {pattern: '\\+\\d[\\d -]{7,}\\d', with: phone}
    profile: {strategy: json, paths: {"$.contact.email": email, "$.cards[*].number": card_number}}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from datastage.errors import StepError
from datastage.mask.contract import Param, StrategyContext, strategy

# -- regex -------------------------------------------------------------------------------


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


# -- json --------------------------------------------------------------------------------

_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[\*\]|\.\*|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def parse_path(path: str) -> list[str | int | None]:
    """``$.a.b[0][*]`` -> ``['a', 'b', 0, None]`` (None: every item).

    >>> parse_path("$.contact['e-mail']")
    ['contact', 'e-mail']
    """
    if not path.startswith("$"):
        raise ValueError(f"a JSON path starts with '$', got {path!r}")
    steps: list[str | int | None] = []
    position = 1
    while position < len(path):
        match = _STEP.match(path, position)
        if not match:
            raise ValueError(f"cannot read JSON path {path!r} at {path[position:]!r}")
        if match.group(1) is not None:
            steps.append(match.group(1))
        elif match.group(2) is not None:
            steps.append(int(match.group(2)))
        elif match.group(3) is not None:
            steps.append(match.group(3))
        elif match.group(4) is not None:
            steps.append(match.group(4))
        else:
            steps.append(None)
        position = match.end()
    if not steps:
        raise ValueError("a JSON path needs at least one step after '$'")
    return steps


def _json_nested(params: Mapping[str, Any]) -> dict[str, Any]:
    paths = params.get("paths")
    return dict(paths) if isinstance(paths, Mapping) else {}


def _check_json(params: Mapping[str, Any], table: Any, column: Any) -> str | None:
    paths = params.get("paths")
    if not isinstance(paths, Mapping) or not paths:
        return "json needs 'paths': a mapping of JSON path to strategy"
    for path in paths:
        try:
            parse_path(str(path))
        except ValueError as exc:
            return f"paths: {exc}"
    return None


def _slots(node: Any, steps: list[str | int | None]) -> list[tuple[Any, Any]]:
    """(container, key) pairs that the path reaches in ``node``."""
    if not steps:
        return []
    step, rest = steps[0], steps[1:]
    keys: list[Any]
    if step is None:
        keys = list(range(len(node))) if isinstance(node, list) else list(node) if isinstance(node, dict) else []
    elif isinstance(step, int):
        keys = [step] if isinstance(node, list) and step < len(node) else []
    else:
        keys = [step] if isinstance(node, dict) and step in node else []
    if not rest:
        return [(node, k) for k in keys]
    out = []
    for k in keys:
        out.extend(_slots(node[k], rest))
    return out


@strategy(
    "json",
    params=[Param("paths", dict, required=True, doc="JSON path -> strategy, e.g. {\"$.contact.email\": email}")],
    types={"json", "text"},
    changes=False,
    nested=_json_nested,
    validate=_check_json,
)
def json_paths(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Apply strategies to the values at JSON paths inside JSON documents (text or JSON columns).

    Paths: ``$.a.b``, ``$.items[0]``, ``$.items[*].email``, ``$['odd key']``. Values at a
    path go through the nested strategy as one batch (NULLs stay NULL, missing paths are
    skipped); text documents stay text. A value that is not JSON stops the refresh.
    Example: ``profile: {strategy: json, paths: {"$.contact.email": email, "$.card": card_number}}``.
    """
    documents: list[Any] = []
    was_text: list[bool] = []
    for value in values.to_numpy(dtype=object):
        if isinstance(value, str):
            try:
                documents.append(json.loads(value))
            except json.JSONDecodeError:
                raise StepError(f"{ctx.column.name}: a value is not valid JSON; the json strategy needs "
                                "JSON documents") from None
            was_text.append(True)
        else:
            documents.append(json.loads(json.dumps(value, default=str)))
            was_text.append(False)
    for path in ctx.params["paths"]:
        slots: list[tuple[Any, Any]] = []
        for document in documents:
            slots.extend((c, k) for c, k in _slots(document, parse_path(str(path))) if c[k] is not None)
        if not slots:
            continue
        found = pd.Series([c[k] for c, k in slots], dtype=object)
        masked = ctx.apply(str(path), found).to_numpy(dtype=object)
        for (container, k), new in zip(slots, masked, strict=True):
            container[k] = new
    out = np.empty(len(documents), dtype=object)
    out[:] = [json.dumps(d, ensure_ascii=False, default=str) if text else d
              for d, text in zip(documents, was_text, strict=True)]
    return pd.Series(out, index=values.index, dtype=object)
