"""Detection quality on generated scenes whose true boxes are known: AP, false boxes, stability.

    python benchmarks/quality.py                    # full setting: every named setting
    python benchmarks/quality.py --quick            # CI: small dataset, calibrated vs reference
    python benchmarks/quality.py --check-targets    # exit 1 when a target is missed

The benchmark is the package ``streamdet.quality``; this script runs its command line and writes
the JSON to benchmarks/results/ unless ``--out`` says otherwise.
"""

from pathlib import Path

from streamdet.quality.cli import main

if __name__ == "__main__":
    raise SystemExit(main(results_dir=Path(__file__).resolve().parent / "results"))
