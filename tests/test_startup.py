"""``datastage --version`` and ``--help`` start without the library's heavy imports, and ``import
datastage`` still gives every library function (also the three named like a module of the package)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pandas", "numpy", "sqlalchemy", "faker", "pyarrow", "cryptography", "psycopg", "pymysql", "distributed",
         "dask")


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    return set(done.stdout.split())


def test_version_and_help_import_none_of_the_library() -> None:
    for argv in (["--version"], ["--help"], ["refresh", "--help"]):
        code = ("from datastage.cli import main\n"
                f"try:\n    main({argv!r})\nexcept SystemExit as exit:\n    assert exit.code == 0, exit.code")
        loaded = _modules_after(code)
        assert not loaded & set(HEAVY), (argv, sorted(loaded & set(HEAVY)))


def test_import_datastage_is_light_until_a_library_function_is_used() -> None:
    assert not _modules_after("import datastage") & set(HEAVY)
    assert {"pandas", "sqlalchemy"} <= _modules_after("import datastage\ndatastage.refresh")


def test_library_functions_survive_importing_the_modules_named_like_them() -> None:
    import datastage
    import datastage.demo
    import datastage.plan
    import datastage.report.compose
    from datastage import api

    for name in ("plan", "report", "demo", "refresh", "scan"):
        assert getattr(datastage, name) is getattr(api, name), name
    assert set(datastage.__all__) >= {"plan", "report", "demo", "refresh", "DatastageError", "__version__"}
