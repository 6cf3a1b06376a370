"""The ``json`` strategy: masks the values at JSON paths inside JSON documents (text or JSON columns).

The values found at a path go to a *nested* strategy as one batch, which the policy
checks like any column rule and the engine runs like one (same domain, same redraws), so
an e-mail address inside a profile document masks to exactly what the ``email`` column
gives for it.

Example::

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
