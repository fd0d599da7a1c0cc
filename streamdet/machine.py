"""Where numbers were taken: the machine and the versions of the libraries that ran.

Every benchmark writes this next to its results, because timings mean little without it. The
load average is part of it: when it is well above zero, other jobs shared the cores and only
ratios measured within one run compare.
"""

from __future__ import annotations

import importlib
import os
import platform
from typing import Any

#: Libraries reported when importable (import name -> key in the report).
LIBRARIES: dict[str, str] = {
    "numpy": "numpy",
    "onnxruntime": "onnxruntime",
    "cv2": "opencv",
    "av": "av",
    "torch": "torch",
    "transformers": "transformers",
    "streamdet": "streamdet",
}


def machine_info(libraries: tuple[str, ...] = tuple(LIBRARIES)) -> dict[str, Any]:
    """Platform, CPUs (usable and physical), load average and the versions of ``libraries``
    (import names; one that is not installed is reported as None, never imported by force)."""
    from streamdet.clip.optimize import physical_cores

    affinity = getattr(os, "sched_getaffinity", None)
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(affinity(0)) if affinity else os.cpu_count(),
        "physical_cores": physical_cores(),
        "load_average": [round(v, 2) for v in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "python": platform.python_version(),
    }
    for name in libraries:
        try:
            module = importlib.import_module(name)
        except ImportError:
            info[LIBRARIES.get(name, name)] = None
            continue
        info[LIBRARIES.get(name, name)] = getattr(module, "__version__", None)
    return info
