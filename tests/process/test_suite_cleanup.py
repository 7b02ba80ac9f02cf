"""Nothing a test run starts outlives it, however the run ends.

The servers tests start (`tests/served.py`) run in sessions of their own, so that a kill
of their group reaches their workers; a signal to the test run's own group (what stops
`make test`: `kill -- -PGID`, a CI step's timeout) therefore does not reach them.
`tests/conftest.py` ends them before the run ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.served import ROOT, processes_tagged, start_in_own_group

NESTED_TEST = """
import time
from pathlib import Path

from tests.served import ServerProcess


def test_serves_until_stopped() -> None:
    ServerProcess({{"TEST_PROCESS_TAG": "{tag}", "SQLITE_PATH": "{database}", "WORKERS": "2"}})
    Path("{ready}").touch()
    time.sleep(60)
"""


@pytest.mark.slow
def test_a_test_run_that_is_stopped_leaves_no_server_behind(tmp_path: Path) -> None:
    # GIVEN a test run (as `make test` starts one) whose test serves the app
    tag = f"customer-api-test-run-{uuid.uuid4()}"
    ready = tmp_path / "ready"
    nested = tmp_path / "test_nested.py"
    nested.write_text(NESTED_TEST.format(tag=tag, database=tmp_path / "customers.db", ready=ready))
    run = start_in_own_group(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.conftest",
            str(nested),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        settled = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < settled:
            time.sleep(0.05)
        assert ready.exists(), "the nested run never served"
        assert processes_tagged(tag)
        # WHEN the run's process group gets SIGTERM
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(timeout=30)
        # THEN nothing it served is left running
        assert processes_tagged(tag) == []
    finally:
        for pid in processes_tagged(tag):
            os.kill(pid, signal.SIGKILL)
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=10)
