"""datastage: realistic but safe data for test and staging environments.

Subset a production database with referential integrity, mask every sensitive column
by a reviewable YAML policy, load the result atomically into staging, and write a
compliance report for every refresh. Every CLI command has a library twin here::

    import datastage
    result = datastage.refresh("staging", config="datastage.yaml")
    print(result.verdict, result.report.html)
"""

import logging as _logging

from datastage._version import __version__
from datastage.api import (
    check_rules,
    demo,
    envs,
    gc,
    history,
    load_project,
    new_key,
    plan,
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
)
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

__all__ = [
    "ConfigError", "DatastageError", "LockHeld", "RulesError", "SafetyError", "VerificationFailed",
    "__version__", "check_rules", "demo", "envs", "gc", "history", "load_project", "new_key", "plan",
    "propose_rules", "provision", "refresh", "report", "report_findings", "rollback", "scan", "schedule_list",
    "schedule_run", "strategies", "teardown", "verify_report",
]
