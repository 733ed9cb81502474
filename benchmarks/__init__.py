"""zodc's benchmarks: the utility runner and its baselines, throughput, ablations, seed sweeps.

Not part of the installed ``zodc`` package (which imports nothing from here): run from the
repository root, e.g. ``python -m benchmarks.runner --grid ci``. See ``benchmarks/README.md``.
"""
