"""The secrets of a project, and the one redactor every text leaving the process goes through.

A :class:`Secrets` set holds secrets: the password of every database and webhook URL (from
its userinfo, from ``?password=`` in its query and from libpq ``password=`` key=value text)
and the masking key (as it is stored, and its bytes as hex and base64). :meth:`Secrets.redact`
replaces each by ``***`` in whatever encoding a text carries it: raw, percent-encoded
(``quote`` or ``quote_plus``, upper- or lower-case hex, partly or twice), JSON-escaped,
HTML-escaped, backslash-escaped or shell-quoted. The match is built character by character, so a secret
cannot slip through in a mix of encodings either. It also hides what looks like a password
when it is not a known one: the ``user:...@`` part of any URL and ``password=...`` pairs.

:data:`KNOWN` is the set of this process: a project registers its URLs when it is loaded, a
masking key when it is created. Reports, history and state files, log lines, CLI output,
webhook bodies, hook output and error messages go through :func:`redact` or
:func:`redact_data` before they are written.

Example:
    >>> found = Secrets()
    >>> found.add_url("postgresql://app:S3cret%21pw@db/prod")
    >>> found.redact("S3cret!pw S3cret%21pw S3cret%2521pw S3cret&#33;pw S3cret\\\\u0021pw")
    '*** *** *** *** ***'
    >>> found.redact("postgresql://qa:other@db/x?sslmode=require&password=x1")
    'postgresql://qa:***@db/x?sslmode=require&password=***'
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote

MASK = "***"
MIN_LENGTH = 4  # shorter "secrets" protect nothing, and hiding them would garble every output
PASSWORD_KEYS = frozenset({"password", "passwd", "pwd", "sslpassword"})

_KEY_NAMES = r"(?:pg)?password|passwd|pwd|sslpassword|mysql_pwd"
# A password=value pair in a query string, a libpq conninfo string, a shell assignment or SQL.
_PAIR = re.compile(rf"(?i)(?<![\w.-])((?:{_KEY_NAMES})\s*=\s*)('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,'\"]+)")
# The password of a URL's userinfo (``scheme://user:password@``).
_USERINFO = re.compile(r"([A-Za-z][\w+.-]*://[^:/@\s]*:)[^@\s/<>\"']+@")
_USERINFO_PASSWORD = re.compile(r"^[A-Za-z][\w+.-]*://[^:/@]*:([^@]*)@")
_NAMED_ENTITIES = {"&": ("amp",), "<": ("lt",), ">": ("gt",), '"': ("quot",), "'": ("apos",)}
_JSON_SHORT = {"\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}


def _hex_any_case(digits: str) -> str:
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in digits)


def _char_pattern(char: str) -> str:
    """Every form one character of a secret may take in output, as a regex. ASCII letters and digits
    stand for themselves: no standard encoding (URL, JSON, HTML, shell) changes them, and their
    literal runs let :class:`Secrets` skip, at the speed of a substring search, texts that cannot
    hold a secret."""
    if char.isascii() and char.isalnum():
        return char
    code = ord(char)
    forms = [re.escape(char)]
    forms.append("".join("%(?:25)?" + _hex_any_case(f"{byte:02X}") for byte in char.encode("utf-8")))
    if char == " ":
        forms.append(r"\+")
    forms.append(rf"&\#0*{code};")
    forms.append(rf"&\#[xX]0*{_hex_any_case(f'{code:X}')};")
    forms += [f"&{name};" for name in _NAMED_ENTITIES.get(char, ())]
    if code < 0x10000:
        forms.append(r"\\u" + _hex_any_case(f"{code:04X}"))
    else:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        forms.append(r"\\u" + _hex_any_case(f"{high:04X}") + r"\\u" + _hex_any_case(f"{low:04X}"))
    if code < 0x100:
        forms.append(r"\\x" + _hex_any_case(f"{code:02X}"))
    if char in _JSON_SHORT:
        forms.append(r"\\" + _JSON_SHORT[char])
    if char == "'":  # inside a single-quoted shell word: 'it'"'"'s' or 'it'\''s'
        forms += [r"'\"'\"'", r"'\\''"]
    # Any number of backslashes in front: JSON (\"), Python repr (\'), shells (\!), and escapes of escapes.
    return r"\\*(?:" + "|".join(forms) + ")"


def secret_pattern(secret: str) -> str:
    """A regex matching ``secret`` in any of the encodings (or a mix of them, character by character)."""
    return "".join(_char_pattern(char) for char in secret)


@functools.lru_cache(maxsize=4096)
def _compiled(secret: str) -> re.Pattern[str]:
    return re.compile(secret_pattern(secret))


def _anchor(secret: str) -> str:
    """The longest run of ASCII letters and digits of ``secret``: every form of it contains this run."""
    runs = re.findall(r"[A-Za-z0-9]+", secret)
    return max(runs, key=len) if runs else ""


def url_passwords(url: str) -> list[str]:
    """The passwords a URL carries: its userinfo's, ``?password=`` (and similar keys) in its query,
    and ``password=`` in libpq key=value text anywhere in it; each as written and decoded."""
    found: list[str] = []
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.password:
            found.append(str(parsed.password))
        for key, value in parsed.query.items():
            values = value if isinstance(value, tuple) else (value,)
            if key.lower() in PASSWORD_KEYS:
                found += [str(v) for v in values]
    except Exception:  # noqa: BLE001, S110 - not a SQLAlchemy URL: the patterns below still apply
        pass
    match = _USERINFO_PASSWORD.match(url)
    if match and match.group(1):
        found += [match.group(1), unquote(match.group(1))]
    for text in (url, unquote(url)):
        for pair in _PAIR.finditer(text):
            value = pair.group(2)
            if value[:1] in ("'", '"') and value[-1:] == value[:1]:
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            found += [value, unquote(value)]
    return [value for value in dict.fromkeys(found) if value]


def key_forms(secret: bytes, stored: str | None = None) -> list[str]:
    """A masking key as text may show it: as stored, its bytes as hex and base64, and (for a key
    stored as hex or base64) the decoded bytes as base64 or hex."""
    forms: list[str] = []
    texts = [stored] if stored else []
    with contextlib.suppress(UnicodeDecodeError):
        texts.append(secret.decode("utf-8"))
    raw: list[bytes] = [secret]
    for text in texts:
        compact = text.strip()
        forms.append(compact)
        if re.fullmatch(r"(?:[0-9a-fA-F]{2})+", compact):
            forms += [compact.lower(), compact.upper()]
            raw.append(bytes.fromhex(compact))
        else:
            with contextlib.suppress(binascii.Error, ValueError):
                altchars = b"-_" if "-" in compact or "_" in compact else None
                raw.append(base64.b64decode(compact + "=" * (-len(compact) % 4), altchars=altchars, validate=True))
    for data in raw:
        forms += [data.hex(), data.hex().upper()]
        for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
            text = encoded.decode("ascii")
            forms += [text, text.rstrip("=")]
    return [form for form in dict.fromkeys(forms) if form]


class Secrets:
    """A set of secrets and the redactor for them; safe to share between threads."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._ordered: list[tuple[str, re.Pattern[str]]] = []
        self._stale = False
        for value in values:
            self.add(value)

    def add(self, value: str | None) -> None:
        """Add one secret (ignored when shorter than :data:`MIN_LENGTH` characters)."""
        if value is None:
            return
        text = str(value)
        if len(text) < MIN_LENGTH or text == MASK or text in self._values:
            return
        with self._lock:
            self._values.add(text)
            self._stale = True

    def add_url(self, url: str | None) -> None:
        """Add every password ``url`` carries (see :func:`url_passwords`)."""
        if url:
            for password in url_passwords(str(url)):
                self.add(password)

    def add_key(self, secret: bytes, stored: str | None = None) -> None:
        """Add a masking key in every form text may carry it (see :func:`key_forms`)."""
        for form in key_forms(secret, stored):
            self.add(form)

    def snapshot(self) -> frozenset[str]:
        """The secrets held now (for :meth:`restore`)."""
        with self._lock:
            return frozenset(self._values)

    def restore(self, values: frozenset[str]) -> None:
        """Hold exactly ``values`` again (tests isolate the process-wide sets with it)."""
        with self._lock:
            self._values = set(values)
            self._stale = True

    def update(self, other: Secrets) -> None:
        for value in other:
            self.add(value)

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(sorted(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def _entries(self) -> list[tuple[str, re.Pattern[str]]]:
        """(anchor, pattern) of every secret, longest secret first (each compiled once)."""
        with self._lock:
            if self._stale:
                for value in self._values - set(self._patterns):
                    self._patterns[value] = _compiled(value)
                self._ordered = [(_anchor(v), self._patterns[v]) for v in sorted(self._values, key=len, reverse=True)]
                self._stale = False
            return self._ordered

    def found_in(self, text: str) -> bool:
        """Whether ``text`` carries one of the secrets, in any encoding."""
        return bool(text) and any(anchor in text and pattern.search(text) for anchor, pattern in self._entries())

    def redact_known(self, text: str) -> str:
        """``text`` with every secret of the set (any encoding) as ``***``, and nothing else changed."""
        if not text:
            return text
        for anchor, pattern in self._entries():
            if anchor in text:  # "" for a secret without letters or digits: always searched
                text = pattern.sub(MASK, text)
        return text

    def redact(self, text: str) -> str:
        """``text`` with every secret (any encoding) and anything that looks like a password as ``***``."""
        if not text:
            return text
        text = self.redact_known(text)
        if "://" in text:
            text = _USERINFO.sub(rf"\g<1>{MASK}@", text)
        if "=" in text:
            text = _PAIR.sub(rf"\g<1>{MASK}", text)
        return text

    def redact_data(self, data: Any) -> Any:
        """A copy of a JSON-like value (dicts, lists, tuples, strings) with every string redacted."""
        if isinstance(data, str):
            return self.redact(data)
        if isinstance(data, dict):
            return {self.redact(k) if isinstance(k, str) else k: self.redact_data(v) for k, v in data.items()}
        if isinstance(data, list):
            return [self.redact_data(v) for v in data]
        if isinstance(data, tuple):
            return tuple(self.redact_data(v) for v in data)
        return data


KNOWN = Secrets()
"""Every secret this process has seen (projects' URLs, masking keys): what every output hides."""
KEYS = Secrets()
"""The masking keys this process has seen (every form): what no hook's environment carries."""


def register_key(secret: bytes, stored: str | None = None) -> None:
    """Hide a masking key from every output and every hook's environment."""
    for form in key_forms(secret, stored):
        KNOWN.add(form)
        KEYS.add(form)


def combined(*extra: Secrets | Iterable[str]) -> Secrets:
    """:data:`KNOWN` plus ``extra`` secrets, as one set."""
    merged = Secrets(KNOWN)
    for more in extra:
        for value in more:
            merged.add(value)
    return merged


def redact(text: str) -> str:
    """``text`` without any known secret (see :meth:`Secrets.redact`)."""
    return KNOWN.redact(text)


def redact_known(text: str) -> str:
    """``text`` without any known secret, and otherwise unchanged (for whole rendered files)."""
    return KNOWN.redact_known(text)


def redact_data(data: Any) -> Any:
    """A JSON-like value without any known secret in its strings (see :meth:`Secrets.redact_data`)."""
    return KNOWN.redact_data(data)


def redacted_json(data: Any, **options: Any) -> str:
    """``json.dumps(data, **options)`` of ``data`` with every string redacted (values JSON cannot hold
    are turned into strings first, so they are redacted too)."""
    plain = json.loads(json.dumps(data, default=str))
    return json.dumps(redact_data(plain), **options)


_STANDARD_RECORD = set(vars(logging.makeLogRecord({})))


class RedactingFilter(logging.Filter):
    """Hides every known secret in a log record: its message, arguments and ``extra`` fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args:
            record.args = redact_data(record.args)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_RECORD and not key.startswith("_"):
                setattr(record, key, redact_data(value))
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the redacting filter, so no handler sees a secret."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def redacting_filter() -> RedactingFilter:
    """The one filter instance (for handlers)."""
    return _FILTER
