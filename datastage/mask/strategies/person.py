"""Strategies that read other columns of the row: ``person.*``, ``date_shift``, ``shuffle``,
``template``; and ``noise``.

``person.*`` and ``date_shift`` derive everything from an *entity*: the value of the
``by`` columns. An entity that is a key is named by the table that owns it, so
``orders.customer_id`` and ``customer.customer_id`` name the same customer, and every row
of one customer gets the same fake identity or the same date shift in every table.

Example:
    >>> # customer: {first_name: person.first_name, email: email}  -> names agree with the e-mail
    >>> # orders: {ordered_at: {strategy: date_shift, by: customer_id, max_days: 60}}
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from datastage.mask.contract import Param, StrategyContext, object_series, strategy
from datastage.mask.fakepool import fake_pool, pick, provider_exists, provider_hint
from datastage.mask.strategies.basic import fake_emails, identity_hash, local_part_pool, person_names
from datastage.source.schema import TableInfo
from datastage.source.values import canonical_text
from datastage.yamlfile import did_you_mean


def by_columns(params: Mapping[str, Any]) -> list[str]:
    """The ``by`` parameter as a list of column names."""
    by = params.get("by")
    if by is None:
        return []
    return [by] if isinstance(by, str) else [str(c) for c in by]


def _check_by(params: Mapping[str, Any], table: TableInfo | None, column: Any) -> str | None:
    if table is None:
        return None
    for name in by_columns(params):
        if name not in table.columns:
            return f"by: table {table.key} has no column '{name}'{did_you_mean(name, list(table.columns))}"
    return None


def entity_prefix(table: TableInfo | None, columns: list[str]) -> str:
    """``owner(cols)`` when ``columns`` are a key of ``table`` or a foreign key, else ``""``."""
    if table is None or not columns:
        return ""
    wanted = tuple(columns)
    if wanted == tuple(table.primary_key):
        return f"{table.key}({','.join(wanted)})"
    for fk in table.foreign_keys:
        if wanted == tuple(fk.columns):
            return f"{fk.ref_table}({','.join(fk.ref_columns)})"
    return ""


def entity_seeds(ctx: StrategyContext, values: pd.Series) -> pd.Series:
    """Seed text per row: the ``by`` columns' values (else the primary key, else the value itself)."""
    table = ctx.table
    candidates = [by_columns(ctx.params)]
    if table is not None and table.primary_key:
        candidates.append(list(table.primary_key))
    seeds = pd.Series(np.full(len(values), None, dtype=object), index=values.index, dtype=object)
    rows = ctx.rows(values.index) if ctx.frame is not None else None
    for columns in candidates:
        if not columns or rows is None or any(c not in rows.columns for c in columns):
            continue
        joined = pd.Series(canonical_text(rows[columns[0]]), index=values.index, dtype=object)
        for column in columns[1:]:
            part = pd.Series(canonical_text(rows[column]), index=values.index, dtype=object)
            joined = (joined + "\x1f" + part).where(joined.notna() & part.notna(), None)
        prefix = entity_prefix(table, columns)
        if prefix:
            joined = (prefix + ":" + joined).where(joined.notna(), None)
        todo = seeds.isna().to_numpy()
        seeds[todo] = joined.to_numpy(dtype=object)[todo]
        if not seeds.isna().any():
            return seeds
    todo = seeds.isna().to_numpy()
    seeds[todo] = canonical_text(values[todo])
    return seeds


# -- person ------------------------------------------------------------------------------

_PERSON_PARAMS = [
    Param("by", (str, list), doc="column(s) of the same row naming the person (default: the table's "
                                 "e-mail column if it has an email rule, else the primary key)"),
    Param("locale", str, doc="Faker locale of the names"),
]


@strategy("person.first_name", params=_PERSON_PARAMS, types={"text"}, row_independent=False,
          validate=_check_by)
def person_first_name(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """First name of the fake person behind the row (one identity per ``by`` value).

    With ``by: email`` it is the first name inside that row's masked ``email``.
    Example: ``first_name: person.first_name``.
    """
    firsts, _ = person_names(ctx, entity_seeds(ctx, values))
    return object_series(firsts, values)


@strategy("person.last_name", params=_PERSON_PARAMS, types={"text"}, row_independent=False,
          validate=_check_by)
def person_last_name(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Last name of the fake person behind the row. Example: ``last_name: person.last_name``."""
    _, lasts = person_names(ctx, entity_seeds(ctx, values))
    return object_series(lasts, values)


@strategy("person.full_name", params=_PERSON_PARAMS, types={"text"}, row_independent=False,
          validate=_check_by)
def person_full_name(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """``First Last`` of the fake person behind the row. Example: ``card_holder: {strategy: person.full_name,
    by: customer_id}``."""
    firsts, lasts = person_names(ctx, entity_seeds(ctx, values))
    return object_series(firsts + " " + lasts, values)


@strategy("person.email", params=[*_PERSON_PARAMS, Param("keep_domain", bool, False, doc="keep the part after @"),
                                  Param("mail_domain", str, "example.com", doc="domain of the fake addresses")],
          types={"text"}, row_independent=False, validate=_check_by)
def person_email(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """The fake person's e-mail; with ``by: email`` exactly what the ``email`` strategy gives that address.

    Not unique-capable on its own: for a unique e-mail column use ``email``, whose names
    agree with ``person.*`` rules that use ``by`` on it. Example: ``contact: {strategy: person.email, by: email}``.
    """
    seeds = entity_seeds(ctx, values)
    return object_series(fake_emails(ctx.with_domain("email"), seeds), values)


@strategy("person.username", params=_PERSON_PARAMS, types={"text"}, row_independent=False, validate=_check_by)
def person_username(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """``first.last`` plus two keyed digits for the fake person. Example: ``login: person.username``."""
    seeds = entity_seeds(ctx, values)
    locale = ctx.params.get("locale") or ctx.locale
    identity = identity_hash(ctx, seeds)
    firsts, lasts = local_part_pool(locale, "first_name"), local_part_pool(locale, "last_name")
    first = firsts[(identity % np.uint64(len(firsts))).astype(np.int64)]
    last = lasts[((identity >> np.uint64(20)) % np.uint64(len(lasts))).astype(np.int64)]
    number = ((identity >> np.uint64(40)) % np.uint64(100)).astype(np.int64)
    return object_series(first + "." + last + np.char.zfill(number.astype(str), 2).astype(object), values)


# -- date_shift --------------------------------------------------------------------------

@strategy(
    "date_shift",
    params=[
        Param("by", (str, list), doc="entity column(s): every row of one entity shifts the same "
                                     "(default: the primary key)"),
        Param("max_days", int, 30, doc="largest shift in days, either way (never 0)"),
    ],
    types={"date", "datetime", "text"},
    row_independent=False,
    validate=_check_by,
)
def date_shift(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Shift dates by a keyed number of days per entity, so intervals inside an entity survive.

    The shift lies in ``[-max_days, -1] ∪ [1, max_days]`` and depends only on the key and
    the entity (``by``; default the row's primary key): ``by: customer_id`` shifts every
    date of one customer alike, in every table. Times and time zones are kept; ISO text
    dates stay text. Example: ``ordered_at: {strategy: date_shift, by: customer_id, max_days: 90}``.
    """
    max_days = max(1, int(ctx.params.get("max_days") or 30))
    h = ctx.hash(entity_seeds(ctx, values))
    days = (h % np.uint64(max_days)).astype(np.int64) + 1
    days = np.where((h >> np.uint64(63)).astype(bool), -days, days)
    return object_series([_shift(v, int(d)) for v, d in zip(values.to_numpy(dtype=object), days, strict=True)], values)


def _shift(value: Any, days: int) -> Any:
    delta = dt.timedelta(days=days)
    if isinstance(value, dt.date | pd.Timestamp):
        return value + delta
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return (dt.date.fromisoformat(text) + delta).isoformat()
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            return value
        sep = "T" if "T" in text else " "
        shifted = (parsed + delta).isoformat(sep=sep)
        return shifted
    return value


# -- noise -------------------------------------------------------------------------------

def _check_noise(params: Mapping[str, Any], table: Any, column: Any) -> str | None:
    if (params.get("relative") is None) == (params.get("absolute") is None):
        return "noise needs exactly one of 'relative' (e.g. 0.1) or 'absolute' (e.g. 5)"
    amount = params.get("relative") if params.get("relative") is not None else params.get("absolute")
    if amount is not None and float(amount) <= 0:
        return "the noise amount must be greater than 0"
    return None


@strategy(
    "noise",
    params=[
        Param("relative", float, doc="up to this fraction of the value, either way (0.1 = ±10%)"),
        Param("absolute", float, doc="up to this amount, either way"),
    ],
    types={"integer", "decimal", "float"},
    validate=_check_noise,
)
def noise(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Add keyed random noise, relative or absolute; integers stay integers, decimals keep their scale.

    Deterministic per value; never returns the input (a zero change becomes one unit of
    the value's last digit). Example: ``salary: {strategy: noise, relative: 0.1}``.
    """
    h = ctx.hash(values)
    unit = ((h >> np.uint64(11)).astype(np.float64) / 2.0**53) * 2.0 - 1.0  # [-1, 1)
    relative = ctx.params.get("relative")
    absolute = ctx.params.get("absolute")
    array = values.to_numpy(dtype=object)
    if ctx.column is not None and ctx.column.category == "decimal":
        # SQLite returns NUMERIC values as floats: as decimals they keep their digits, so the noise
        # moves at least one unit of the last one (a float's noise could round back to the input).
        floats = np.fromiter(map(type, array), dtype=object, count=len(array)) == float  # noqa: E721
        if floats.any():
            array = array.copy()
            array[floats] = [decimal.Decimal(repr(v)) for v in array[floats]]
    out = []
    for value, u in zip(array, unit, strict=True):
        out.append(_add_noise(value, float(u), relative, absolute))
    return object_series(out, values)


def _add_noise(value: Any, u: float, relative: float | None, absolute: float | None) -> Any:
    if isinstance(value, str):
        try:
            number = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            return value
        return str(_add_noise(number, u, relative, absolute))
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal | np.number):
        return value
    direction = 1 if u >= 0 else -1
    if isinstance(value, int | np.integer):
        base = int(value)
        amount = abs(base) * relative if relative is not None else absolute
        result = base + round(u * float(amount or 0))
        return result if result != base else base + direction
    if isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        step = decimal.Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)
        spread = (abs(value) * decimal.Decimal(str(relative)) if relative is not None
                  else decimal.Decimal(str(absolute)))
        moved = (value + spread * decimal.Decimal(repr(u))).quantize(step, rounding=decimal.ROUND_HALF_EVEN)
        return moved if moved != value else value + direction * step
    base_float = float(value)
    amount_f = abs(base_float) * relative if relative is not None else float(absolute or 0)
    result_f = base_float + u * amount_f
    if result_f == base_float:
        result_f = base_float + direction * (amount_f or 1.0) * 0.5
    return result_f


# -- shuffle -----------------------------------------------------------------------------

def _check_within(params: Mapping[str, Any], table: TableInfo | None, column: Any) -> str | None:
    within = params.get("within")
    if within and table is not None and within not in table.columns:
        return f"within: table {table.key} has no column '{within}'{did_you_mean(within, list(table.columns))}"
    return None


@strategy("shuffle", params=[Param("within", str, doc="shuffle only among rows with the same value here")],
          deterministic=False, changes=False, row_independent=False, validate=_check_within)
def shuffle(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Permute the column's values among the rows of each batch (optionally ``within`` a group).

    The real values stay, detached from their rows: the distribution is kept exactly.
    The permutation is keyed and repeats for the same batch, but it works per batch
    (``batch_size`` rows), not per value, so it is not for keys. Example:
    ``salary: {strategy: shuffle, within: department_id}``.
    """
    n = len(values)
    if n < 2:
        return values.astype(object)
    salt = ctx.hash(pd.Series(np.arange(n), dtype=object), salt="position")
    order_key = ctx.hash(values) ^ salt
    within = ctx.params.get("within")
    groups = (pd.factorize(pd.Series(canonical_text(ctx.rows(values.index)[within]), dtype=object))[0]
              if within else np.zeros(n, dtype=np.int64))
    positions = np.lexsort((np.arange(n), groups))
    donors = np.lexsort((order_key, groups))
    out = np.empty(n, dtype=object)
    source = values.to_numpy(dtype=object)
    out[positions] = source[donors]
    return object_series(out, values)


# -- template ----------------------------------------------------------------------------

_FIELD = re.compile(r"\{([^{}]+)\}")
_FILTERS = {"lower": str.lower, "upper": str.upper, "title": str.title,
            "slug": lambda s: re.sub(r"[^a-z0-9]+", "", s.lower())}


def _template_fields(template: str) -> list[tuple[str, str | None]]:
    fields = []
    for match in _FIELD.finditer(template):
        name, _, flt = match.group(1).partition("|")
        fields.append((name.strip(), flt.strip() or None))
    return fields


def _check_template(params: Mapping[str, Any], table: TableInfo | None, column: Any) -> str | None:
    template = params.get("template")
    if not isinstance(template, str):
        return None
    for name, flt in _template_fields(template):
        if flt is not None and flt not in _FILTERS:
            return f"template field {{{name}|{flt}}}: unknown filter '{flt}'{did_you_mean(flt, _FILTERS)}"
        if name.startswith("fake."):
            if not provider_exists("en_US", name[5:]):
                return (f"template field {{{name}}}: Faker has no provider '{name[5:]}'"
                        f"{provider_hint('en_US', name[5:])}")
        elif table is not None and name not in table.columns:
            return (f"template field {{{name}}}: table {table.key} has no column '{name}'"
                    f"{did_you_mean(name, list(table.columns))}")
    return None


@strategy("template", params=[Param("template", str, required=True,
                                    doc="text with {column} (its masked value), {fake.provider} and "
                                        "{column|lower|upper|title|slug} fields")],
          types={"text"}, changes=False, row_independent=False, reads_masked=True, validate=_check_template)
def template(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Build the value from other columns' *masked* values and fake values.

    Example: ``login_email: {strategy: template, template: "{first_name|slug}.{last_name|slug}@example.com"}``
    gives an address that agrees with the row's masked names.
    """
    text = str(ctx.params["template"])
    rows = ctx.masked_rows(values.index)
    locale = ctx.params.get("locale") or ctx.locale
    pieces: dict[str, np.ndarray] = {}
    for name, flt in _template_fields(text):
        token = f"{name}|{flt}" if flt else name
        if token in pieces:
            continue
        if name.startswith("fake."):
            column = pick(fake_pool(locale, name[5:]), ctx.hash(values, salt=name)).astype(str)
        else:
            raw = rows[name].to_numpy(dtype=object)
            column = np.array(["" if v is None or v is pd.NA else str(v) for v in raw], dtype=object)
        if flt:
            column = np.array([_FILTERS[flt](v) for v in column], dtype=object)
        pieces[token] = column
    out = []
    for i in range(len(values)):
        out.append(_FIELD.sub(lambda m, i=i: str(pieces[m.group(1).replace(" ", "")][i]), text))  # type: ignore[misc]
    return object_series(out, values)
