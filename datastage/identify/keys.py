"""Keys that are identifiers: a primary or foreign key holding a number the person carries.

A key the database assigns (a sequence, a UUID) carries nothing about the person and
needs no masking. But some schemas key a table by the identifier itself: the driver's
licence number is ``drivers_license.id``, the SSN is ``income.ssn``. The rule, by names
only: a key column whose own name names an identifier document or number (``ssn``,
``passport_no``), or a bare ``id`` of a table named for one (``drivers_license``,
``passports``), holds that identifier. A number column needs a strong name for it (a
``members.id`` integer is the row's number; a text ``members.id`` is judged by its
values in the scan). A foreign key holds what the key it references holds. Devices and
vehicles are things with their own serial column: their table's ``id`` is a row number.

Example:
    >>> key_identifier("ssn", "income", "integer"), key_identifier("id", "drivers_license", "integer")
    ('national_id', 'drivers_licence')
    >>> key_identifier("id", "customers", "integer"), key_identifier("id", "devices", "integer")
    (None, None)
    >>> key_identifier("id", "members", "integer"), key_identifier("id", "members", "text")
    (None, 'health_plan_id')
"""

from __future__ import annotations

from datastage.identify import vocabulary
from datastage.source.schema import ColumnInfo, SchemaModel, TableInfo

# Identifier kinds a table can be keyed by: documents and numbers a person carries.
CARRIED_KINDS = frozenset({"national_id", "tax_id", "passport", "drivers_licence", "licence_number",
                           "medical_record_number", "health_plan_id", "account_number", "card_number", "iban",
                           "other_identifier"})
NUMBER_CATEGORIES = frozenset({"integer", "uuid", "decimal"})
_BARE = frozenset({("id",), ("no",), ("nr",), ("number",), ("code",), ("key",)})


def key_identifier(column: str, table: str, category: str | None = None) -> str | None:
    """The identifier kind a key column named ``column`` of table ``table`` holds, by the names alone, or None."""
    hint = key_hint(column, table, category)
    return hint.kind if hint else None


def key_hint(column: str, table: str, category: str | None = None) -> vocabulary.NameHint | None:
    """:func:`key_identifier` with the strength of the name (``weak``: the values have to agree)."""
    reading = vocabulary.read_name(column, category)
    if reading.tokens in _BARE:  # a bare id: the table's name says whose number it is
        words = [vocabulary.singular(t) for t in vocabulary.tokens(table)]
        reading = vocabulary.read_name("_".join([*words, *reading.tokens]), category)
    for hint in reading.hints:
        if hint.kind in CARRIED_KINDS and (hint.strength == "strong" or category not in NUMBER_CATEGORIES):
            return hint
    return None


def carried_key(table: TableInfo, column: ColumnInfo, model: SchemaModel | None = None,
                _seen: frozenset[tuple[str, str]] = frozenset()) -> vocabulary.NameHint | None:
    """The identifier (kind, strength of the name) a key column of ``table`` holds, or None; with ``model``
    a foreign key holds what the key it references holds.

    None also for columns that are no key: their values are judged like any other column's.
    """
    in_pk = column.name in table.primary_key
    fks = [fk for fk in table.foreign_keys if column.name in fk.columns]
    if not in_pk and not fks:
        return None
    if model is not None and (table.key, column.name) not in _seen:
        for fk in fks:
            target = model.tables.get(fk.ref_table)
            ref = fk.ref_columns[fk.columns.index(column.name)]
            if target is not None and ref in target.columns:
                parent = target.columns[ref]
                return carried_key(target, parent, model, _seen | {(table.key, column.name)}) \
                    or key_hint(parent.name, target.name, parent.category)
    return key_hint(column.name, table.name, column.category)
