#!/usr/bin/env bash
# The GPU checks of issue 25 (part 7 and the H100 aims), prepared as one run for a lent GPU machine.
#
#   bash benchmarks/device_check.sh fetch            # here, with the package index: wheels into .whl/
#   bash benchmarks/device_check.sh run [STEP ...]   # there, through the device tool with carry [".whl"]
#   bash benchmarks/device_check.sh dry [STEP ...]   # here, on the CPU: the same steps, small
#
# The GPU machines' image has JAX with CUDA, scikit-learn, pandas, pytest and most of what zodc needs,
# and no network. `fetch` downloads the rest as Python 3.12 wheels (lifelines, autograd,
# autograd-gamma, dp-accounting, dm-tree: about 0.8 MB). `run` installs them and zodc (editable, no
# dependencies), then runs these steps (all of them, or the STEPs named, to rerun a few), each under
# its own time limit: about seven and a half minutes in all, which leaves a lease of 15 minutes
# the time to start the machine and to rerun a step.
#   machine     nvidia-smi, Python, JAX's version and devices;
#   device      tests/test_device.py: every kernel on the GPU against the CPU in the same process;
#   kernels     tests/kernels on the GPU, each kernel against scikit-learn or lifelines
#               (test_tree_cpu.py tests the C++ builder, a CPU kernel, and is left out);
#   throughput  the throughput grid `gpu`: native against host per step, fits/s up to q = 1,024;
#   scaling     a 1,000-step condensation of a 100,000-row cohort: four timed chunks of 250 steps;
#   fits        depth-4 tree fits per second against the tables fitted in one call.
# What comes back (seven files; the device tool returns eight at most): log.txt (the tests' failures
# in full) and a JSON and a Markdown file for each of throughput, scaling and batched (fits). A step
# that fails or runs out of time is recorded in log.txt and the next one runs.
set -uo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
[ $# -gt 0 ] && shift
STEPS=("$@")
[ ${#STEPS[@]} -eq 0 ] && STEPS=(machine device kernels throughput scaling fits)
WHEELS=(lifelines==0.30.3 autograd==1.9.1 autograd-gamma==0.4.2 dp-accounting==0.6.0 dm-tree==0.1.10)
declare -A LIMIT

step() {  # step NAME COMMAND...: run one step under its time limit, note its exit status
  local name="$1" start=$SECONDS
  shift
  echo "=== $name (limit ${LIMIT[$name]} s) $(date -u +%H:%M:%S)"
  timeout --kill-after=10 "${LIMIT[$name]}" "$@"
  echo "=== $name: exit $? after $((SECONDS - start)) s"
}

case "$mode" in
  fetch)
    "${PYTHON:-.venv/bin/python}" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}" || exit 1
    exclude="$(git rev-parse --git-path info/exclude)"  # never committed (a worktree's path too)
    mkdir -p "$(dirname "$exclude")"
    grep -qsx '/.whl/' "$exclude" || echo '/.whl/' >> "$exclude"
    ls -l .whl
    exit 0
    ;;
  run)
    OUT="${OUT:-device_out}"
    PYTHON=python3
    python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . || exit 1
    WORKERS=4
    KERNELS=(tests/kernels --ignore=tests/kernels/test_tree_cpu.py)
    GRID=(--grid gpu --n-jobs 16 --host-budget-seconds 5 --max-seconds 80)
    SCALING=(--sizes 100000 --variants blocked --chunk-size 250 --chunks 4 --threads 0)
    FITS=(--fit-batches 128,1024,4096,16384)
    LIMIT=([machine]=20 [device]=90 [kernels]=110 [throughput]=100 [scaling]=50 [fits]=50)
    ;;
  dry)
    OUT="${OUT:-$(mktemp -d)}"
    PYTHON="${PYTHON:-.venv/bin/python}"
    WORKERS=1
    KERNELS=(tests/kernels/test_logistic.py)
    GRID=(--grid smoke --quick --n-jobs 1)
    SCALING=(--sizes 2000 --variants blocked --quick)
    FITS=(--fit-batches 16,64)
    LIMIT=([machine]=20 [device]=120 [kernels]=120 [throughput]=60 [scaling]=60 [fits]=60)
    ;;
  *)
    echo "usage: $0 fetch | run [STEP ...] | dry [STEP ...]" >&2
    exit 2
    ;;
esac

mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
# The deterministic GPU kernels `zodc condense` asks for (zodc.runtime.deterministic_gpu): the
# benchmarks time the path users run; the tests set the flag themselves (tests/conftest.py).
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_exclude_nondeterministic_ops=true"
NOTE=(--note "benchmarks/device_check.sh $mode")
PYTEST=("$PYTHON" -m pytest -q -rfE -p no:cacheprovider --dist loadfile)
for name in "${STEPS[@]}"; do
  case "$name" in
    machine) step machine bash -c "nvidia-smi || true; $PYTHON -c 'import sys, jax; print(sys.version); print(\"jax\", jax.__version__, jax.devices())'" ;;
    device) step device "${PYTEST[@]}" -n 0 tests/test_device.py ;;
    kernels) step kernels "${PYTEST[@]}" -n "$WORKERS" "${KERNELS[@]}" ;;
    throughput) step throughput "$PYTHON" -m benchmarks.throughput "${GRID[@]}" --out "$OUT/throughput.json" "${NOTE[@]}" ;;
    scaling) step scaling "$PYTHON" -m benchmarks.scaling "${SCALING[@]}" --out "$OUT/scaling.json" "${NOTE[@]}" ;;
    fits) step fits "$PYTHON" -m benchmarks.batched --parts fits "${FITS[@]}" --out "$OUT/batched.json" "${NOTE[@]}" ;;
    *) echo "=== unknown step '$name' (machine device kernels throughput scaling fits)"; exit 2 ;;
  esac
done
echo "=== results in $OUT"
