"""Running streamdet on a Ray cluster (the optional extra ``streamdet[ray]``).

``cluster``: import Ray, start or join a cluster (one-line errors), size the workers.
``pool``: map a per-file callable over files on Ray actors, each holding one loaded model.
``folder``: ``streamdet run FOLDER --ray`` and ``run_folder``: resumable folder runs.

Importing this package does not import Ray; Ray is imported when a run starts.
"""

from __future__ import annotations

from streamdet.distributed.cluster import WorkerShape, import_ray, ray_cluster, worker_shape
from streamdet.distributed.folder import DetectorSpec, FolderResult, run_folder, run_planned
from streamdet.distributed.pool import Done, MapResult, map_on_actors

__all__ = [
    "DetectorSpec",
    "Done",
    "FolderResult",
    "MapResult",
    "WorkerShape",
    "import_ray",
    "map_on_actors",
    "ray_cluster",
    "run_folder",
    "run_planned",
    "worker_shape",
]
