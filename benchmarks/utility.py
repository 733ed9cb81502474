"""Utility benchmark: condensed tables against every alternative a clinical data owner has.

The same runner as ``python -m benchmarks.runner`` (:mod:`benchmarks.runner`); see benchmarks/README.md.

    python -m benchmarks.utility --grid cpu --out benchmarks/results/utility_cpu.json
    python benchmarks/utility.py --grid cpu --out benchmarks/results/utility_cpu.json     # the same
"""

import os
import sys

if __package__ in (None, ""):  # run as a file: make the repository root (the `benchmarks` package) importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
