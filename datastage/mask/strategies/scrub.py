"""The ``scrub`` strategy: identifiers inside free text and JSON strings, replaced by the pseudonyms
the structured columns give them.

:func:`~datastage.identify.spans.find_spans` finds the spans over the whole batch; each span is then
masked like the column it would be in: e-mail addresses by the nested ``email`` rule (or, when the
address is the row's own, as the row's masked e-mail column), phone numbers by ``phone``, cards by
``card_number``, IBANs by ``iban``, national ids, licence, passport, member and record numbers, IP
addresses and personal URL parts by ``tokenize``. A name of the row's own person becomes that row's
masked name (``names_from``, by default the table's columns with a ``person.*`` or fake-name rule), a
name another row of the batch holds becomes that row's masked name, and any other name found by the
dictionaries becomes a keyed fake name (the same one for the same name everywhere). Everything
outside the spans stays exactly as it was; JSON documents keep their keys, numbers and layout, and
only their strings are scrubbed.

Example::

    customer:
      email: email
      first_name: person.first_name
      last_name: person.last_name
      notes: scrub             # "Ann (ann@x.org) called" -> "Jane (jane.roe.k2x9a1b0@example.com) called"
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from datastage.identify import reference as pii
from datastage.identify.spans import NAME, SPAN_KINDS, Spans, find_spans, name_key, name_words
from datastage.mask.contract import Param, StrategyContext, strategy
from datastage.mask.fakepool import fake_pool, pick
from datastage.source.values import canonical_text
from datastage.yamlfile import did_you_mean

NESTED_DEFAULTS: dict[str, str] = {"email": "email", "phone": "phone", "card_number": "card_number",
                                   "iban": "iban", "id": "tokenize"}
"""Nested strategy per kind of span (``with:`` overrides any of them); ``id`` masks every other kind."""
NESTED_OF_KIND: dict[str, str] = {"email": "email", "phone": "phone", "card_number": "card_number", "iban": "iban"}
NAME_STRATEGIES = ("person.first_name", "person.last_name", "person.full_name")
FAKE_NAME_PROVIDERS = ("first_name", "last_name", "name")
EMAIL_STRATEGIES = ("email", "person.email")
SHARED_PARAMS = ("email", "phone", "card_number", "iban")  # nested rules that follow the table's own rule


def _columns(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def is_name_rule(strategy_name: str | None) -> bool:
    """Whether a column rule gives person names (``person.first_name``, ``fake.last_name_female`` ...).

    >>> is_name_rule("person.full_name"), is_name_rule("fake.first_name_male"), is_name_rule("fake.city")
    (True, True, False)
    """
    name = strategy_name or ""
    if name in NAME_STRATEGIES:
        return True
    provider = name.split(".", 1)[1] if name.startswith("fake.") else ""
    return any(provider == p or provider.startswith(f"{p}_") for p in FAKE_NAME_PROVIDERS)


def complete_rules(rules: Mapping[str, Any]) -> None:
    """Give the table's ``scrub`` rules their defaults that depend on the other rules of the table.

    ``names_from`` and ``emails_from`` default to the columns with a name or e-mail rule, and a
    nested ``email``, ``phone``, ``card_number`` or ``iban`` rule that ``with:`` does not set takes
    the parameters and domain of the table's own rule of that strategy, so a value masks the same in
    the column and in the text.
    """
    for column, rule in rules.items():
        if rule.strategy != "scrub":
            continue
        if rule.params.get("names_from") is None:
            rule.params["names_from"] = [c for c, r in rules.items() if c != column and is_name_rule(r.strategy)]
        if rule.params.get("emails_from") is None:
            rule.params["emails_from"] = [c for c, r in rules.items() if c != column and r.strategy in EMAIL_STRATEGIES]
        given = rule.params.get("with") or {}
        nested = dict(rule.nested)
        for name in SHARED_PARAMS:
            if name in given or name not in nested:
                continue
            own = next((r for c, r in rules.items() if c != column and r.strategy == nested[name].strategy), None)
            if own is not None:
                nested[name] = replace(nested[name], params=dict(own.params), domain=own.domain)
        rule.nested = nested


def _scrub_nested(params: Mapping[str, Any]) -> dict[str, Any]:
    given = params.get("with") if isinstance(params.get("with"), Mapping) else {}
    assert isinstance(given, Mapping)
    return {name: given.get(name, default) for name, default in NESTED_DEFAULTS.items()}


def _check_scrub(params: Mapping[str, Any], table: Any, column: Any) -> str | None:
    kinds = params.get("kinds")
    if kinds is not None:
        if not isinstance(kinds, list) or not kinds:
            return f"kinds: give a list of kinds ({', '.join(SPAN_KINDS)})"
        for kind in kinds:
            if kind not in SPAN_KINDS:
                return f"kinds: unknown kind '{kind}'{did_you_mean(str(kind), list(SPAN_KINDS))} " \
                       f"(kinds: {', '.join(SPAN_KINDS)})"
    given = params.get("with")
    if given is not None:
        for name in given:
            if name not in NESTED_DEFAULTS:
                return f"with: unknown kind '{name}'{did_you_mean(str(name), list(NESTED_DEFAULTS))} " \
                       f"(kinds: {', '.join(NESTED_DEFAULTS)})"
    for param in ("names_from", "emails_from"):
        names = params.get(param)
        if names is not None and not all(isinstance(n, str) for n in ([names] if isinstance(names, str) else names)):
            return f"{param}: give a column name or a list of column names"
        if table is not None:
            for name in _columns(names):
                if name not in table.columns:
                    return f"{param}: table {table.key} has no column '{name}'{did_you_mean(name, list(table.columns))}"
                if column is not None and name == column.name:
                    return f"{param}: '{name}' is the column being scrubbed; name the columns holding the person's " \
                           f"{'names' if param == 'names_from' else 'e-mail address'}"
                source = table.columns[name]
                if source.category != "text":
                    return f"{param}: {table.key}.{name} is {source.category} ({source.type_name}), not text; " \
                           f"name the columns holding the person's " \
                           f"{'names' if param == 'names_from' else 'e-mail address'}"
    return None


@strategy(
    "scrub",
    params=[
        Param("kinds", list, doc=f"kinds of identifier to find (default all: {', '.join(SPAN_KINDS)})"),
        Param("names_from", (str, list), doc="columns of the row holding the person's names (default: the "
                                             "table's columns with a person.* or fake name rule)"),
        Param("emails_from", (str, list), doc="columns of the row holding the person's e-mail address "
                                              "(default: the table's columns with an email or person.email rule)"),
        Param("with", dict, doc="strategy per kind of span: email, phone, card_number, iban, id "
                                "(defaults: email, phone, card_number, iban, tokenize)"),
    ],
    types={"text", "json"},
    changes=False,
    row_independent=False,
    reads_masked=True,
    nested=_scrub_nested,
    validate=_check_scrub,
)
def scrub(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Find identifiers inside free text and JSON strings; replace each with the pseudonym its column gets.

    E-mail addresses, phones, cards, IBANs, national ids, passport and licence numbers, IP addresses
    and people's names are found and replaced; every other word, space and character stays. The
    e-mail in a note becomes what the ``email`` column gives it, the row's own names become the row's
    masked names, other names keyed fake names. JSON documents stay valid: only their strings change.
    Example: ``notes: scrub`` or ``{strategy: scrub, names_from: full_name, emails_from: contact}``.
    """
    documents = _Documents(values, ctx.column.category if ctx.column is not None else "text")
    if not documents.items:
        return documents.rebuild(list(documents.items))
    kinds = ctx.params.get("kinds")
    frame = ctx.rows(values.index) if ctx.frame is not None else None
    # The other columns' masked values (None outside a batch the engine is masking: no own values then).
    masked = ctx.masked.loc[values.index] if ctx.masked is not None else None
    names_from = [c for c in _columns(ctx.params.get("names_from")) if frame is not None and c in frame.columns]
    names = [canonical_text(frame[c]) for c in names_from] if frame is not None else []
    spans = find_spans(documents.items, kinds=kinds, names=names, rows=documents.rows, region=_region(ctx.locale))
    replacements = _Replacer(ctx, documents, spans, frame, masked, names_from, names).replacements()
    return documents.rebuild(compose(documents.items, spans, replacements))


def _region(locale: str) -> str:
    """The country part of a Faker locale (``en_GB`` -> ``GB``; ``US`` without one)."""
    part = locale.split("_")[-1] if "_" in locale else ""
    return part.upper() if len(part) == 2 else "US"


def compose(items: list[str], spans: Spans, replacements: np.ndarray) -> list[str]:
    """``items`` with every span replaced (spans sorted by value and start, as :func:`find_spans` gives them).

    >>> found = find_spans(["call +44 20 7946 0018 now"])
    >>> compose(found.source, found, np.array(["+44 00 0000 0000"], dtype=object))
    ['call +44 00 0000 0000 now']
    """
    out = list(items)
    if not len(spans):
        return out
    value, start, end = spans.value.tolist(), spans.start.tolist(), spans.end.tolist()
    text = replacements.tolist()
    bounds = [0, *(np.flatnonzero(np.diff(spans.value)) + 1).tolist(), len(value)]
    for first, stop in itertools.pairwise(bounds):
        original = items[value[first]]
        parts, last = [], 0
        for j in range(first, stop):
            parts.append(original[last:start[j]])
            parts.append(text[j])
            last = end[j]
        parts.append(original[last:])
        out[value[first]] = "".join(parts)
    return out


# -- documents: plain text, JSON text, JSON values -----------------------------------------

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"(\s*:)?')


class _Documents:
    """The batch as text items: a plain value is one item, a JSON document one item per string in it."""

    def __init__(self, values: pd.Series, category: str) -> None:
        self.values = values
        self.items: list[str] = []
        rows: list[int] = []
        # Per value: ("text", item) | ("json", [(start, end, item)...]) | ("native", document, [(container, key, item)])
        self.plan: list[tuple[Any, ...]] = []
        for position, value in enumerate(values.to_numpy(dtype=object).tolist()):
            if isinstance(value, str):
                literals = self._json_literals(value) if category == "json" or value.lstrip()[:1] in ("{", "[") \
                    else None
                if literals is None:
                    self.plan.append(("text", len(self.items)))
                    self.items.append(value)
                    rows.append(position)
                    continue
                slots = []
                for a, b, decoded in literals:
                    slots.append((a, b, len(self.items)))
                    self.items.append(decoded)
                    rows.append(position)
                self.plan.append(("json", slots))
            elif isinstance(value, dict | list):
                found: list[tuple[Any, Any, int]] = []
                self._strings(value, found, rows, position)
                self.plan.append(("native", found))
            else:
                self.plan.append(("keep",))
        self.rows = np.asarray(rows, dtype=np.int64)

    @staticmethod
    def _json_literals(text: str) -> list[tuple[int, int, str]] | None:
        """(start, end, decoded) of every string value of a JSON document (keys left out), or None."""
        try:
            document = json.loads(text)
        except ValueError:
            return None
        if not isinstance(document, dict | list):
            return None
        out = []
        for match in _JSON_STRING.finditer(text):
            if match.group(1) is None:
                out.append((match.start(), match.start() + len(match.group(0)), json.loads(match.group(0))))
        return out

    def _strings(self, node: Any, found: list[tuple[Any, Any, int]], rows: list[int], position: int) -> None:
        keys = range(len(node)) if isinstance(node, list) else list(node) if isinstance(node, dict) else []
        for key in keys:
            child = node[key]
            if isinstance(child, str):
                found.append((node, key, len(self.items)))
                self.items.append(child)
                rows.append(position)
            elif isinstance(child, dict | list):
                self._strings(child, found, rows, position)

    def rebuild(self, items: list[str]) -> pd.Series:
        """The values with their items replaced by ``items``."""
        out = np.empty(len(self.plan), dtype=object)
        originals = self.values.to_numpy(dtype=object)
        for position, step in enumerate(self.plan):
            if step[0] == "text":
                out[position] = items[step[1]]
            elif step[0] == "json":
                text = originals[position]
                changed = [(a, b, i) for a, b, i in step[1] if items[i] != self.items[i]]
                if changed:
                    parts, last = [], 0
                    for a, b, i in changed:
                        parts += [text[last:a], json.dumps(items[i], ensure_ascii=False)]
                        last = b
                    text = "".join([*parts, text[last:]])
                out[position] = text
            elif step[0] == "native":
                if any(items[i] != self.items[i] for _, _, i in step[1]):
                    out[position] = _replaced_copy(originals[position], step[1], items)
                else:
                    out[position] = originals[position]
            else:
                out[position] = originals[position]
        return pd.Series(out, index=self.values.index, dtype=object)


def _replaced_copy(document: Any, slots: list[tuple[Any, Any, int]], items: list[str]) -> Any:
    """A deep copy of ``document`` with the strings at ``slots`` replaced (the input is never changed)."""
    memo: dict[int, Any] = {}
    duplicate = copy.deepcopy(document, memo)
    for container, key, i in slots:
        memo.get(id(container), container)[key] = items[i]
    return duplicate


# -- replacements --------------------------------------------------------------------------

def _text(values: pd.Series) -> np.ndarray:
    return np.array(["" if v is None or v is pd.NA else str(v) for v in values.to_numpy(dtype=object)], dtype=object)


def styled(like: str, name: str) -> str:
    """``name`` written in the letter case of ``like`` (upper, lower or as it is).

    >>> styled("MARGORIE", "Jane"), styled("margorie", "Jane"), styled("Margorie", "jane")
    ('JANE', 'jane', 'Jane')
    """
    if len(like) > 1 and like.isupper():
        return name.upper()
    if like.islower():
        return name.lower()
    return name[:1].upper() + name[1:] if name[:1].islower() else name


class _Replacer:
    """The replacement text of every span of a batch."""

    def __init__(self, ctx: StrategyContext, documents: _Documents, spans: Spans, frame: pd.DataFrame | None,
                 masked: pd.DataFrame | None, names_from: list[str], names: list[np.ndarray]) -> None:
        self.ctx, self.documents, self.spans = ctx, documents, spans
        self.frame, self.masked, self.names_from, self.names = frame, masked, names_from, names
        self.texts = np.array(spans.texts(documents.items), dtype=object) if len(spans) else np.zeros(0, object)
        self.masked_names = [masked[c].to_numpy(dtype=object) for c in names_from] if masked is not None else None
        self.out = np.empty(len(spans), dtype=object)
        self.locale = ctx.locale

    def replacements(self) -> np.ndarray:
        kind = self.spans.kind
        todo = np.ones(len(kind), dtype=bool)
        if len(kind):
            self._own_emails(todo)
            for name in ("email", "phone", "card_number", "iban"):
                self._nested(name, todo & (kind == name))
            self._nested("id", todo & (kind != NAME) & ~np.isin(kind.astype(str), list(NESTED_OF_KIND)))
            self._names(kind == NAME)
        return self.out

    def _nested(self, name: str, selected: np.ndarray) -> None:
        chosen = np.flatnonzero(selected)
        if len(chosen):
            self.out[chosen] = _text(self.ctx.apply(name, pd.Series(self.texts[chosen], dtype=object)))

    def _own_emails(self, todo: np.ndarray) -> None:
        """An address the row holds in an e-mail column becomes that column's masked value."""
        columns = [c for c in _columns(self.ctx.params.get("emails_from"))
                   if self.frame is not None and self.masked is not None and c in self.frame.columns]
        chosen = np.flatnonzero(self.spans.kind == "email")
        if not columns or not len(chosen):
            return
        assert self.frame is not None and self.masked is not None
        rows = self.documents.rows[self.spans.value[chosen]]
        found = pd.Series(self.texts[chosen], dtype=object).str.strip().str.lower().to_numpy(dtype=object)
        for column in columns:
            own = pd.Series(canonical_text(self.frame[column]), dtype=object).str.strip().str.lower()
            masked = _text(self.masked[column].iloc[rows])
            # A column left as it is (listed by hand) would put the real address back: nested email then.
            unchanged = pd.Series(masked, dtype=object).str.strip().str.lower().to_numpy(dtype=object) == found
            same = (own.to_numpy(dtype=object)[rows] == found) & todo[chosen] & ~unchanged
            if same.any():
                hits = chosen[same]
                self.out[hits] = masked[same]
                todo[hits] = False

    def _names(self, selected: np.ndarray) -> None:
        spans = self.spans
        chosen = np.flatnonzero(selected)
        if not len(chosen):
            return
        items = self.documents.items
        core = [items[v][a:b] for v, a, b in zip(spans.value[chosen].tolist(), spans.core_start[chosen].tolist(),
                                                 spans.core_end[chosen].tolist(), strict=True)]
        names: list[str | None] = [None] * len(chosen)
        stored = (spans.tier[chosen] == "row") | (spans.tier[chosen] == "table")
        for n, column, row, first, last in zip(np.flatnonzero(stored).tolist(), spans.column[chosen][stored].tolist(),
                                               spans.row[chosen][stored].tolist(), spans.token[chosen][stored].tolist(),
                                               spans.token_end[chosen][stored].tolist(), strict=True):
            names[n] = self._masked_name(column, row, first, last)
        roles = np.where(spans.role[chosen] == "", "last", spans.role[chosen]).astype(object)
        keys = np.array([name_key(c) for c in core], dtype=object)
        missing = np.array([n is None for n in names], dtype=bool)
        if missing.any():
            firsts = pii.first_names()
            guessed = np.where((spans.role[chosen] == "") & np.array([k in firsts for k in keys], dtype=bool),
                               "first", roles)
            fakes = self._fake_names(keys[missing], guessed[missing])
            for n, fake in zip(np.flatnonzero(missing).tolist(), fakes.tolist(), strict=True):
                names[n] = fake
        for n, j in enumerate(chosen.tolist()):
            v, start, end = int(spans.value[j]), int(spans.start[j]), int(spans.end[j])
            head = items[v][start:int(spans.core_start[j])]
            tail = items[v][int(spans.core_end[j]):end]
            if spans.tier[j] in ("row", "table"):  # digits glued to a stored name are part of the stored value
                head, tail = re.sub(r"\d", "", head), re.sub(r"\d", "", tail)
            self.out[j] = head + styled(core[n], str(names[n])) + tail

    def _masked_name(self, column: int, row: int, first: int, last: int) -> str | None:
        """The masked words standing where words ``first`` to ``last`` of the name value stand (None: none)."""
        if self.masked_names is None:
            return None
        original = name_words(self.names[column][row])
        masked = self.masked_names[column][row]
        replaced = name_words(masked if isinstance(masked, str) else None)
        if not replaced or last >= len(original):
            return None
        if first == 0 and last == len(original) - 1:
            chosen = " ".join(replaced)
        elif len(replaced) == len(original):
            chosen = " ".join(replaced[first:last + 1])
        elif last == len(original) - 1:
            chosen = replaced[-1]
        elif first == 0:
            chosen = replaced[0]
        else:
            return None
        return None if name_key(chosen) == name_key(" ".join(original[first:last + 1])) else chosen

    def _fake_names(self, keys: np.ndarray, roles: np.ndarray) -> np.ndarray:
        """A keyed fake name per (role, name): the same name gets the same fake everywhere, never itself."""
        out = np.empty(len(keys), dtype=object)
        for role in ("first", "last"):
            chosen = np.flatnonzero(roles == role)
            if not len(chosen):
                continue
            pool = fake_pool(self.locale, f"{role}_name")
            hashes = self.ctx.key.hash_text(f"{self.ctx.domain}/{role}_name", keys[chosen])
            picked = pick(pool, hashes)
            same = np.array([name_key(str(p)) == k for p, k in zip(picked.tolist(), keys[chosen].tolist(),
                                                                   strict=True)], dtype=bool)
            if same.any():
                picked[same] = pick(pool, hashes[same] + np.uint64(1))
            out[chosen] = picked
        return out
