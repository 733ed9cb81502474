#!/usr/bin/env bash
# The GPU checks of issue 25 (part 7 and the H100 aims), prepared as one run for a lent GPU machine.
#
#   bash benchmarks/device_check.sh fetch   # here, with the package index: wheels into .whl/ (ignored)
#   bash benchmarks/device_check.sh run     # there, through the device tool with carry [".whl"]
#   bash benchmarks/device_check.sh dry     # here, on the CPU: the same steps, small, to check this script
#                                           # (tests/test_device.py then has the CPU stand in for the GPU)
#
# The GPU machines' image has JAX with CUDA, scikit-learn, pandas, pytest and most of what zodc needs,
# and no network. `fetch` downloads the rest as Python 3.12 wheels (lifelines, autograd,
# autograd-gamma, dp-accounting, dm-tree: about 0.8 MB). `run` installs them and zodc (editable, no
# dependencies), then runs these steps, each under its own time limit, so that the whole run ends in
# under nine minutes (one call of the device tool: at most ten):
#   1. the machine: nvidia-smi, Python, JAX's version and devices;
#   2. the device path of every kernel on the GPU: tests/test_device.py (each kernel on the GPU
#      against the CPU in the same process) and tests/kernels (each against scikit-learn or
#      lifelines); tests/kernels/test_tree_cpu.py tests the C++ builder, a CPU kernel, and is left out;
#   3. the throughput grid `gpu` (native against host per step; fits per second up to q = 1,024);
#   4. a 1,000-step condensation of a 100,000-row cohort: four timed chunks of 250 steps;
#   5. depth-4 tree fits per second against the tables fitted in one call.
# What comes back (eight files, the device tool's limit): log.txt, tests.xml and a JSON and a
# Markdown file for each of throughput, scaling and batched. A step that fails or runs out of time
# is recorded in log.txt and the next one runs.
set -uo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
WHEELS=(lifelines==0.30.3 autograd==1.9.1 autograd-gamma==0.4.2 dp-accounting==0.6.0 dm-tree==0.1.10)

step() {  # step NAME SECONDS COMMAND...: run one step under a time limit, note its exit status
  local name="$1" seconds="$2"
  shift 2
  echo "=== $name (limit ${seconds} s) $(date -u +%H:%M:%S)"
  local start=$SECONDS
  timeout --kill-after=10 "$seconds" "$@"
  echo "=== $name: exit $? after $((SECONDS - start)) s"
}

case "$mode" in
  fetch)
    "${PYTHON:-.venv/bin/python}" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}" || exit 1
    grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude  # never committed
    ls -l .whl
    exit 0
    ;;
  run)
    OUT="${OUT:-device_out}"
    PYTHON=python3
    python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . || exit 1
    TESTS=(tests/test_device.py tests/kernels --ignore=tests/kernels/test_tree_cpu.py)
    GRID=(--grid gpu --n-jobs 16 --host-budget-seconds 5 --max-seconds 150)
    SCALING=(--sizes 100000 --variants blocked --chunk-size 250 --chunks 4 --threads 0)
    FITS=(--fit-batches 128,1024,4096,16384)
    WORKERS=4
    LIMITS=(30 180 160 80 60)
    ;;
  dry)
    OUT="${OUT:-$(mktemp -d)}"
    PYTHON="${PYTHON:-.venv/bin/python}"
    TESTS=(tests/test_device.py)
    GRID=(--grid smoke --quick --n-jobs 1)
    SCALING=(--sizes 2000 --variants blocked --quick)
    FITS=(--fit-batches 16,64)
    WORKERS=1
    LIMITS=(30 300 120 120 120)
    ;;
  *)
    echo "usage: $0 fetch | run | dry" >&2
    exit 2
    ;;
esac

mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
step machine "${LIMITS[0]}" bash -c "nvidia-smi || true; $PYTHON -c 'import sys, jax; print(sys.version); print(\"jax\", jax.__version__, jax.devices())'"
step tests "${LIMITS[1]}" "$PYTHON" -m pytest -q -n "$WORKERS" --dist loadfile -p no:cacheprovider "${TESTS[@]}" \
  --junitxml "$OUT/tests.xml"
step throughput "${LIMITS[2]}" "$PYTHON" -m benchmarks.throughput "${GRID[@]}" --out "$OUT/throughput.json" \
  --note "benchmarks/device_check.sh $mode"
step scaling "${LIMITS[3]}" "$PYTHON" -m benchmarks.scaling "${SCALING[@]}" --out "$OUT/scaling.json" \
  --note "benchmarks/device_check.sh $mode"
step fits "${LIMITS[4]}" "$PYTHON" -m benchmarks.batched --parts fits "${FITS[@]}" --out "$OUT/batched.json" \
  --note "benchmarks/device_check.sh $mode"
echo "=== results in $OUT"
