"""Getting a Ray cluster: import Ray (an optional extra), start a local one or connect to one,
and size the workers from the cluster's resources.

Why a reachability check before ``ray.init``: given an address where nothing listens, Ray
retries for minutes before it gives up; a plain TCP connect says the same in a few seconds, so
the user gets a one-line error at once. A cluster that was initialised by the caller (``ray.init``
before streamdet is called, as the tests and notebooks do) is used as it is and left running.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType

from streamdet.errors import ClusterError, ConfigError, MissingDependencyError

RAY_MISSING = 'Ray is not installed; install it with: pip install "streamdet[ray]"'

#: Object store of a local Ray that streamdet starts: workers return reports, never frames, so a
#: small store is plenty (Ray's default takes 30% of the machine's memory).
LOCAL_OBJECT_STORE = 256_000_000

#: Seconds a TCP connect to the cluster's address may take before it counts as unreachable.
CONNECT_TIMEOUT_S = 5.0

_GCS_PORT = 6379  # `ray start --head`'s default
_CLIENT_PORT = 10001  # the Ray Client server's default (ray://)


def import_ray() -> ModuleType:
    """``ray``, or a one-line error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(RAY_MISSING) from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of an address to check, or None for ``auto`` (Ray finds it itself)."""
    if address == "auto":
        return None
    client = address.startswith("ray://")
    rest = address[len("ray://") :] if client else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host:
        return rest, _CLIENT_PORT if client else _GCS_PORT
    if not port.isdigit():
        raise ConfigError(
            f"--ray '{address}' is not an address; give HOST:PORT (e.g. 10.0.0.5:6379), "
            "ray://HOST:PORT or auto"
        )
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """A one-line ``ClusterError`` when nothing answers at ``address``."""
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as err:
        why = err.strerror or type(err).__name__
        raise ClusterError(
            f"cannot reach the Ray cluster at {address} ({why.lower()}); start one there with "
            "`ray start --head`, check the address, or give --ray without an address for a "
            "local Ray"
        ) from None


@contextlib.contextmanager
def ray_cluster(address: str | None = None) -> Iterator[ModuleType]:
    """``ray``, initialised: the caller's cluster if there is one (left running), else a local
    one (``address`` None) or the one at ``address``, shut down (disconnected) on exit."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if address is not None:
        check_reachable(address)
        options: dict = {"address": address}
    else:
        options = {"object_store_memory": LOCAL_OBJECT_STORE, "include_dashboard": False}
    try:
        ray.init(**options, logging_level=logging.ERROR, log_to_driver=False)
    except Exception as err:  # Ray raises ConnectionError, RuntimeError, ValueError...
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ClusterError(f"cannot start or join {where}: {first}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class WorkerShape:
    """How many Ray workers (actors), and what each reserves: CPUs (its threads) and GPUs."""

    workers: int
    cpus: float
    gpus: float


def worker_shape(
    resources: Mapping[str, float],
    *,
    workers: int | None = None,
    threads: int | None = None,
    gpus: float | None = None,
    device: str | None = None,
) -> WorkerShape:
    """Workers from the cluster's ``resources`` (``ray.cluster_resources()``).

    threads: CPUs per worker (default 1: whole files in parallel beat threads within a model
    on small models). gpus: GPUs per worker with ``device`` cuda (default 1; 0.5 puts two
    workers on a GPU). workers: default every CPU (cuda: every GPU) the cluster has, divided by
    what one worker reserves, at least 1. A request the cluster cannot hold is refused (Ray
    would wait for resources forever).
    """
    threads = 1 if threads is None else threads
    if threads < 1:
        raise ConfigError(f"threads per Ray worker must be at least 1, but got {threads}")
    cuda = (device or "cpu").startswith("cuda")
    if gpus is not None and not cuda:
        raise ConfigError("--ray-gpus needs --device cuda (workers on the CPU reserve no GPU)")
    gpu_each = (1.0 if gpus is None else float(gpus)) if cuda else 0.0
    if cuda and not 0 < gpu_each <= 8:
        raise ConfigError(f"--ray-gpus must be a fraction of a GPU or a few GPUs, got {gpus}")
    cpu_total = float(resources.get("CPU", 0.0))
    gpu_total = float(resources.get("GPU", 0.0))
    if cuda and gpu_total <= 0:
        raise ClusterError(
            "--device cuda: the Ray cluster has no GPU; run without --device cuda, or join a "
            "cluster with GPUs"
        )
    fit = int(cpu_total // threads)
    if cuda:
        fit = min(fit, math.floor(gpu_total / gpu_each + 1e-9))
    if workers is None:
        workers = max(1, fit)
    elif workers < 1:
        raise ConfigError(f"--ray-workers must be at least 1, but got {workers}")
    if workers > max(fit, 0) or fit < 1:
        need = f"{workers} x {threads} CPU" + (f" and {workers} x {gpu_each:g} GPU" if cuda else "")
        have = f"{cpu_total:g} CPU" + (f" and {gpu_total:g} GPU" if cuda else "")
        raise ConfigError(
            f"{workers} Ray worker(s) need {need}; the cluster has {have}: "
            "give fewer --ray-workers or --threads"
        )
    return WorkerShape(workers, float(threads), gpu_each)
