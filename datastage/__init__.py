"""datastage: realistic but safe data for test and staging environments.

Subset a production database with referential integrity, mask every sensitive column
by a reviewable YAML policy, load the result atomically into staging, and write a
compliance report for every refresh. Every CLI command has a library twin here::

    import datastage
    result = datastage.refresh("staging", config="datastage.yaml")
    print(result.verdict, result.report.html)
"""

import logging as _logging
import sys as _sys
import types as _types
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from datastage._version import __version__
from datastage.errors import (
    ConfigError,
    DatastageError,
    LockHeld,
    RulesError,
    SafetyError,
    VerificationFailed,
)
from datastage.secrets import get_logger as _get_logger

# Log records go where --log-file says, or nowhere: never Python's last-resort stderr handler;
# and whatever handler a library user adds, no record of datastage's loggers carries a secret.
_get_logger("datastage").addHandler(_logging.NullHandler())

# The library's functions come from datastage.api on first use, so ``import datastage`` and the
# command line's ``--help`` and ``--version`` start without pandas, SQLAlchemy or Faker. Three of
# them share their name with a module of the package (``plan``, ``report``, ``demo``); importing that
# module sets the package attribute to it, so the names are resolved on every read, not stored.
_LIBRARY = frozenset({
    "check_rules", "demo", "envs", "export", "gc", "history", "import_artifact", "load_project", "new_key", "plan",
    "preview",
    "propose_rules", "provision", "refresh", "report", "report_findings", "rollback", "scan", "schedule_list",
    "schedule_run", "strategies", "teardown", "verify_report", "write_proposed_rules",
})

if _TYPE_CHECKING:
    from datastage.api import (
        check_rules,
        demo,
        envs,
        export,
        gc,
        history,
        import_artifact,
        load_project,
        new_key,
        plan,
        preview,
        propose_rules,
        provision,
        refresh,
        report,
        report_findings,
        rollback,
        scan,
        schedule_list,
        schedule_run,
        strategies,
        teardown,
        verify_report,
        write_proposed_rules,
    )
else:
    class _Package(_types.ModuleType):
        def __getattribute__(self, name: str) -> _Any:
            if name in _LIBRARY:
                from datastage import api

                return getattr(api, name)
            return super().__getattribute__(name)

    _sys.modules[__name__].__class__ = _Package

__all__ = [
    "ConfigError", "DatastageError", "LockHeld", "RulesError", "SafetyError", "VerificationFailed",
    "__version__", "check_rules", "demo", "envs", "export", "gc", "history", "import_artifact", "load_project",
    "new_key", "plan",
    "preview", "propose_rules", "provision", "refresh", "report", "report_findings", "rollback", "scan",
    "schedule_list", "schedule_run", "strategies", "teardown", "verify_report", "write_proposed_rules",
]
