"""On-demand templates at ``provision`` time: the copy's name, its time to live and the cap.

A template's ``name:`` pattern (``pr_{id}``) is filled from ``--var id=1234``; a value may hold
only lower-case letters, digits and ``_`` (it becomes part of a database name, so no quoting,
case folding or path can sneak in), and the name it gives must be a valid on-demand name.
``--ttl`` (or the template's ``ttl``) may not exceed ``max_ttl``; a template with ``max_ttl`` and no
``ttl`` gives its copies ``max_ttl``. ``max_copies`` counts the template's copies in the registry,
whatever their state. Every refusal is one :class:`~datastage.errors.UsageError` line (exit 2).

Example:
    >>> template = OnDemandTemplate("staging", "staging", pattern="pr_{id}", max_ttl=dt.timedelta(days=1))
    >>> copy_name(template, None, {"id": "1234"}), ttl_text(copy_ttl(template, None))
    ('pr_1234', '1d')
    >>> copy_name(template, None, {"id": "12; DROP"})
    Traceback (most recent call last):
    ...
    datastage.errors.UsageError: --var id='12; DROP': a value may hold only lower-case letters, digits and _
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping

from datastage.errors import UsageError
from datastage.ops.registry import Provisioned
from datastage.settings import NAME_PLACEHOLDER, ONDEMAND_NAME, OnDemandTemplate

VALUE = re.compile(r"^[a-z0-9_]+$")
_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60))


def _shown(value: str) -> str:
    """A user-given value as an error shows it: quoted, escaped, at most 40 characters."""
    return repr(value if len(value) <= 40 else value[:40] + "...")


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """The names a pattern can give (each placeholder: lower-case letters, digits and _).

    >>> bool(pattern_regex("pr_{id}").fullmatch("pr_77")), bool(pattern_regex("pr_{id}").fullmatch("qa_77"))
    (True, False)
    """
    parts = NAME_PLACEHOLDER.split(pattern)  # literal, field, literal, field, ...
    return re.compile("".join(re.escape(p) if i % 2 == 0 else "[a-z0-9_]+" for i, p in enumerate(parts)))


def copy_name(template: OnDemandTemplate | None, name: str | None, variables: Mapping[str, str]) -> str:
    """The on-demand environment's name: ``name`` as given, or the template's pattern filled from
    ``variables``; a given name must fit the pattern."""
    pattern = template.pattern if template is not None else None
    if pattern is None or template is None:
        if variables:
            what = f"template '{template.name}'" if template is not None else "a copy without a template"
            raise UsageError(f"--var is for a template's name pattern, and {what} has none; give the NAME")
        if name is None:
            what = f"template '{template.name}' has" if template is not None else "without a template there is"
            raise UsageError(f"give the NAME of the new environment: {what} no name pattern to build it from")
        return name
    fields = template.fields
    for key, value in variables.items():
        if key not in fields:
            raise UsageError(f"--var {_shown(key)[1:-1]}: template '{template.name}' names its copies {pattern}, "
                             f"whose placeholders are {', '.join(fields) or 'none'}")
        if not VALUE.match(value):
            raise UsageError(f"--var {key}={_shown(value)}: a value may hold only lower-case letters, digits and _")
    if name is not None:
        if not ONDEMAND_NAME.match(name):
            raise UsageError(f"'{_shown(name)[1:-1]}' is not a valid name: lower-case letters, digits and _, "
                             "starting with a letter")
        if not pattern_regex(pattern).fullmatch(name):
            raise UsageError(f"'{name}' does not fit template '{template.name}''s name pattern {pattern}; "
                             f"leave the NAME out and give {' '.join(f'--var {f}=VALUE' for f in fields)}")
        built = copy_name(template, None, variables) if variables else name
        if built != name:
            raise UsageError(f"'{name}' is not the name --var gives ('{built}'): give one of them")
        return name
    missing = [f for f in fields if f not in variables]
    if missing:
        raise UsageError(f"template '{template.name}' names its copies {pattern}: give "
                         + " ".join(f"--var {f}=VALUE" for f in missing))
    built = NAME_PLACEHOLDER.sub(lambda m: variables[m.group(1)], pattern)
    if not ONDEMAND_NAME.match(built):
        raise UsageError(f"--var gives the name '{built[:60]}', which is not a valid name: lower-case letters, "
                         "digits and _, starting with a letter, at most 48 characters")
    return built


MAX_OWNER = 100


def owner_name(owner: str) -> str:
    """``--owner`` as given, when it is printable text of at most :data:`MAX_OWNER` characters (it is
    written into the registry, the history, the report and the webhook, and shown by ``envs``).

    >>> owner_name("alice@example.com")
    'alice@example.com'
    """
    if not owner.strip() or len(owner) > MAX_OWNER or not owner.isprintable():
        raise UsageError(f"--owner {_shown(owner)}: give a printable name of 1 to {MAX_OWNER} characters "
                         "(no control characters or line breaks)")
    return owner


def ttl_text(delta: dt.timedelta | None) -> str:
    """A duration the way ``--ttl`` takes it (``never`` for None).

    >>> ttl_text(dt.timedelta(hours=36)), ttl_text(dt.timedelta(minutes=90)), ttl_text(None)
    ('36h', '90m', 'never')
    """
    if delta is None:
        return "never"
    seconds = int(delta.total_seconds())
    unit, size = next(((u, s) for u, s in _UNITS if seconds % s == 0), ("m", 60))
    return f"{seconds // size}{unit}"


def copy_ttl(template: OnDemandTemplate | None, ttl: dt.timedelta | None) -> dt.timedelta | None:
    """The copy's time to live: ``ttl``, else the template's ``ttl``, else its ``max_ttl``; never more
    than ``max_ttl``."""
    if template is None:
        return ttl
    chosen = ttl if ttl is not None else (template.ttl or template.max_ttl)
    if template.max_ttl is not None and chosen is not None and chosen > template.max_ttl:
        raise UsageError(f"--ttl {ttl_text(chosen)} is longer than template '{template.name}' allows "
                         f"(max_ttl {ttl_text(template.max_ttl)})")
    return chosen


def check_cap(template: OnDemandTemplate | None, entries: Iterable[Provisioned]) -> None:
    """Refuse a new copy of ``template`` when ``max_copies`` of it exist (in any state)."""
    if template is None or template.max_copies is None:
        return
    copies = [e for e in entries if e.template == template.name]
    if len(copies) < template.max_copies:
        return
    listed = ", ".join(f"{e.name} ({e.state}, expires {e.expires_at or 'never'})" for e in copies)
    allowed = f"{template.max_copies} cop{'y' if template.max_copies == 1 else 'ies'}"
    raise UsageError(f"template '{template.name}' allows at most {allowed} at once (max_copies) and "
                     f"has {len(copies)}: {listed}; drop one with `datastage teardown NAME`, or the expired ones "
                     "with `datastage gc`")
