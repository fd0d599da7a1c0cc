"""machine_info: what every benchmark records about where it ran."""

from __future__ import annotations

from streamdet.machine import machine_info


def test_machine_info_reports_cpus_load_and_versions():
    info = machine_info(("numpy", "cv2", "no_such_library_here"))
    assert info["usable_cpus"] >= 1 and info["physical_cores"] >= 1
    assert info["numpy"] and info["opencv"]
    assert info["no_such_library_here"] is None
    assert "torch" not in info  # only what was asked for
