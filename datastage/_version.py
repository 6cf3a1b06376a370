"""The version of datastage, in one place (reports, notifications and ``--version`` read it)."""

__version__ = "0.1.0"
