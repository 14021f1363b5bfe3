#!/bin/bash
# The GPU check in one call, for a machine with a GPU: prints the card,
# builds what is missing (in the source tree, or in TCK_BUILDDIR), runs the
# GPU tier's tests (tests/gpu/gpu_tests) and the GPU benchmark
# (tests/bench/bench_gpu). Exits non-zero when a test fails or a device case
# is skipped (a GPU machine must run them all).
#
#   tests/gpu/run-on-device.sh            # from the source tree
#   TCK_BENCH_GPU_MIB="1024 4096" tests/gpu/run-on-device.sh  # benchmark sizes
#   TCK_JOBS=2 tests/gpu/run-on-device.sh               # make -j2 (default: nproc)
#   TCK_GPU_BUNDLE=.gpu-bundle tests/gpu/run-on-device.sh
#       # no build there: run what tests/gpu/make-bundle.sh packed here (for a
#       # GPU machine without this build's libraries or compilers)
set -uo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILDDIR=${TCK_BUILDDIR:-$SRCDIR}
cd "$BUILDDIR" || exit 1
LOG=tests/log  # ignored by git, like make check's logs
mkdir -p "$LOG"

echo "== card"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.max,pcie.link.width.max --format=csv
else
    echo "nvidia-smi not found"
fi

echo "== machine"
sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null
ldd --version 2>/dev/null | head -n 1
echo "cpus $(nproc 2>/dev/null), /dev/shm $(df -h --output=avail /dev/shm 2>/dev/null | tail -n 1 | tr -d ' ') free"

if [ -n "${TCK_GPU_BUNDLE:-}" ]; then
    bundle=$(cd "$SRCDIR" && cd "$TCK_GPU_BUNDLE" && pwd) || { echo "run-on-device: no bundle at $TCK_GPU_BUNDLE"; exit 1; }
    [ -x "$bundle/run" ] || { echo "run-on-device: $bundle is not a bundle (tests/gpu/make-bundle.sh makes one)"; exit 1; }
    gpu_tests=("$bundle/run" gpu_tests) bench_gpu=("$bundle/run" bench_gpu) mpirun=("$bundle/run" mpirun)
    python=("$bundle/run" python)
else
    echo "== build"
    jobs=${TCK_JOBS:-$(nproc 2>/dev/null || echo 2)}
    if [ ! -f Makefile ]; then
        # A fresh copy of the tree: configure it for the CUDA tier (GNUmakefile
        # bootstraps a git checkout; a release tarball has configure).
        if [ "$BUILDDIR" = "$SRCDIR" ] && [ -f GNUmakefile ]; then
            make TIERCKPT_CONFIGURE_FLAGS="--with-cuda --disable-cluster-tests" -j"$jobs" all >"$LOG/bootstrap.log" 2>&1 ||
                { tail -n 30 "$LOG/bootstrap.log"; echo "run-on-device: bootstrap failed ($LOG/bootstrap.log): this machine lacks" \
                    "build dependencies (tools/install-deps lists them) or nvcc; build on a machine that has them"; exit 1; }
        elif [ -x "$SRCDIR/configure" ]; then
            "$SRCDIR/configure" --with-cuda --disable-cluster-tests >"$LOG/configure.log" 2>&1 ||
                { tail -n 30 "$LOG/configure.log"; echo "run-on-device: configure failed ($LOG/configure.log)"; exit 1; }
        else
            echo "run-on-device: no Makefile in $BUILDDIR and no configure script: build the tree first (make)"; exit 1
        fi
    fi
    if ! make -j"$jobs" all tests/gpu/gpu_tests tests/bench/bench_gpu >"$LOG/build.log" 2>&1; then
        tail -n 30 "$LOG/build.log"
        echo "run-on-device: build failed ($LOG/build.log)"
        exit 1
    fi
    grep -q '^#define TCK_HAVE_CUDA 1' config.h ||
        { echo "run-on-device: this build has no CUDA tier (configure --with-cuda)"; exit 1; }
    missing=$(ldd runtime/.libs/libtierckpt.so.0 2>/dev/null | grep 'not found')
    [ -n "$missing" ] && { echo "run-on-device: libtierckpt cannot load here:"; echo "$missing"; exit 1; }
    export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    gpu_tests=(tests/gpu/gpu_tests) bench_gpu=(tests/bench/bench_gpu) mpirun=(mpirun)
    python=(env TIERCKPT_LIBRARY="$BUILDDIR/runtime/.libs/libtierckpt.so.0" python3)
fi
# Each step bounded: a hung CUDA call or MPI job must not eat the lease.
echo "== tests"
timeout 300 "${gpu_tests[@]}" | tee "$LOG/gpu_tests.log"
rc=${PIPESTATUS[0]}
echo "== tests, two ranks sharing the node store"
timeout 300 "${mpirun[@]}" -np 2 "${gpu_tests[@]}" | tee "$LOG/gpu_tests_2ranks.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
skips=$(cat "$LOG/gpu_tests.log" "$LOG/gpu_tests_2ranks.log" | grep -c '^:test-result: SKIP')
echo "== python binding with this machine's PyTorch (CUDA tensors, torch.distributed.checkpoint)"
if PYTHONPATH="$SRCDIR/python" "${python[@]}" -c 'import torch, pytest, tierckpt; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "tierckpt features", tierckpt.features())'; then
    PYTHONPATH="$SRCDIR/python" timeout 400 "${python[@]}" -m pytest -q -rs -p no:cacheprovider "$SRCDIR/tests/python" 2>&1 |
        tee "$LOG/python.log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
else
    echo "(no PyTorch or pytest for python3 here: step left out)"
fi
echo "== bench"
for mib in ${TCK_BENCH_GPU_MIB:-1024}; do
    TCK_BENCH_GPU_MIB=$mib timeout 300 "${bench_gpu[@]}" || rc=1
done
echo "== result: tests exit $rc, $skips skipped"
[ "$rc" -eq 0 ] && [ "$skips" -eq 0 ]
