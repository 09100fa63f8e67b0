"""A service process (`kopru run SERVICE`) imports what it runs and nothing more: not the
command line (typer, the operator commands), not the optional extras libraries load only
because they are installed (rich, pygments), not the store driver it does not use.
Each module kept out is resident memory saved in every replica (issue #13)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What `services.cli.main` does for `kopru run SERVICE`, up to the service's build.
LOADED = """
import json, sys
import services.cli
services.cli.keep_out_of_a_service()
import services.cli.serve
from services.registry import entry
entry(sys.argv[1]).builder()
print(json.dumps(sorted({m.split(".")[0] for m, mod in sys.modules.items() if mod})))
"""


def _top_level_modules(service: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", LOADED, service],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("service", ["content-fetcher", "report-requester"])
def test_a_service_process_keeps_out_the_cli_the_extras_and_the_unused_driver(
    service: str,
) -> None:
    loaded = _top_level_modules(service)
    assert {"services", "faststream", "aiokafka"} <= loaded  # the service itself is there
    assert not loaded & {"typer", "rich", "pygments", "shellingham"}, loaded
    assert not loaded & {"cffi", "pycparser"}, loaded  # pycryptodomex on ctypes instead
    assert not loaded & {"asyncpg", "aiosqlite"}, loaded  # opened on use, per the URL


# An AES zip written and read back the way the content-fetcher reads reports, in a
# process set up like a service's: pycryptodomex decrypts on its ctypes backend.
DECRYPTS = """
import io, sys
import services.cli
services.cli.keep_out_of_a_service()
import pyzipper
from Cryptodome.Util import _raw_api
buf = io.BytesIO()
with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED,
                         encryption=pyzipper.WZ_AES) as zf:
    zf.setpassword(b"pw")
    zf.writestr("r.csv", "a;b\\n1;2\\n" * 1000)
with pyzipper.AESZipFile(buf) as zf:
    zf.setpassword(b"pw")
    assert zf.read("r.csv") == b"a;b\\n1;2\\n" * 1000
print(_raw_api.backend, "cffi" in sys.modules and sys.modules["cffi"] is not None)
"""


def test_a_service_process_decrypts_report_zips_without_cffi() -> None:
    out = subprocess.run(
        [sys.executable, "-c", DECRYPTS],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert out.stdout.split() == ["ctypes", "False"]


def test_the_command_line_is_built_only_when_asked() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import sys, services.cli; print('typer' in sys.modules)"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert out.stdout.strip() == "False"
    from services.cli import app

    assert app.registered_commands  # `from services.cli import app` still gives the typer app


def test_a_name_that_is_not_a_service_is_refused_by_the_command_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "run", "no-such-service"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "unknown service 'no-such-service'" in out.stderr
