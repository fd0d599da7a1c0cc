"""Still-frame quality over several seeds of each scene generator, with means and spread.

    python benchmarks/quality_seeds.py                     # calibrated, dense-recheck; 4 + 4 seeds
    python benchmarks/quality_seeds.py --configs calibrated --heldout-seeds 1,2 --threads 2

The benchmark is ``streamdet.quality.seeds``; this script runs its command line and writes the
JSON to benchmarks/results/ unless ``--out`` says otherwise.
"""

from pathlib import Path

from streamdet.quality.seeds import main

if __name__ == "__main__":
    raise SystemExit(main(results_dir=Path(__file__).resolve().parent / "results"))
