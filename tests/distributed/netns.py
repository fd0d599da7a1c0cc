"""Running a test's Ray part in a new network namespace with only the loopback interface up, so
that Ray can bind nothing but 127.0.0.1 (outside one it binds the machine's network address)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent


def unshare_prefix() -> list[str]:
    """The command prefix for a loopback-only namespace (``unshare --net`` as root,
    ``--map-root-user`` otherwise); skips the test when neither is permitted."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("unshare or ip (iproute2) is not installed")
    options = (["--net"], ["--net", "--map-root-user"])
    for opts in options if os.geteuid() == 0 else options[1:]:
        probe = subprocess.run(
            ["unshare", *opts, "--", "sh", "-c", "ip link set lo up"],
            capture_output=True,
            timeout=30,
        )
        if probe.returncode == 0:
            return ["unshare", *opts, "--"]
    pytest.skip("network namespaces are not permitted here (unshare --net failed)")


def run_python_isolated(
    args: list[str], *, cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in a loopback-only namespace, with this checkout first on the path."""
    script = f'ip link set lo up && exec "{sys.executable}" "$@"'
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO), str(REPO / "benchmarks"), os.environ.get("PYTHONPATH")])
        ),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    return subprocess.run(
        [*unshare_prefix(), "sh", "-c", script, "sh", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def scenario_results(script: Path, work: Path, timeout: float = 240) -> dict:
    """Run a scenario script (``SCRIPT WORKDIR RESULTS.json``) in the namespace; its results."""
    out = work / "results.json"
    proc = run_python_isolated([str(script), str(work / "w"), str(out)], cwd=work, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text(encoding="utf-8"))
