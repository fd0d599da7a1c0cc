"""What the Ray scenario scripts share (they run inside the loopback-only namespace): the small
local cluster they start, and the ``streamdet`` command line run as a subprocess."""

from __future__ import annotations

import logging
import subprocess
import sys


def start_test_ray() -> str:
    """A local Ray for the scenarios (2 CPUs, a 200 MB object store, no dashboard); its node's
    address (127.0.0.1 in the namespace)."""
    import ray

    ray.init(
        num_cpus=2,
        object_store_memory=200_000_000,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
    )
    return ray.util.get_node_ip_address()


def cli(*args: str) -> dict:
    """``python -m streamdet ARGS``: exit code, stderr lines (without Ray's network notes),
    stdout lines."""
    proc = subprocess.run(
        [sys.executable, "-m", "streamdet", *args], capture_output=True, text=True, timeout=120
    )
    lines = [line for line in proc.stderr.splitlines() if "network_util.cc" not in line]
    return {"rc": proc.returncode, "stderr": lines, "stdout": proc.stdout.splitlines()}
