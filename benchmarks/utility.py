"""Utility benchmark: condensed tables against every alternative a clinical data owner has.

The same runner as ``zodc bench utility`` (:mod:`zodc.bench`); see benchmarks/README.md.

    python benchmarks/utility.py --grid cpu --out benchmarks/results/utility_cpu.json
"""

import sys

from zodc.bench import main

if __name__ == "__main__":
    sys.exit(main())
