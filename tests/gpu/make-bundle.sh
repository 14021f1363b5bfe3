#!/bin/bash
# Packs the built GPU tests and GPU benchmark into one folder that runs on a
# GPU machine which has the NVIDIA driver but none of this build's libraries
# (no Open MPI, UCX, libfabric, fmt; another distribution's C library):
# the programs, every shared library they and Open MPI's components load
# (the C library and its loader included, so the distribution there does
# not matter), Open MPI's components and help texts under a prefix that
# OPAL_PREFIX points at, and a `run` script. Only the driver (libcuda) comes
# from the machine it runs on.
#
#   make -j2 all tests/gpu/gpu_tests tests/bench/bench_gpu   # a --with-cuda build
#   tests/gpu/make-bundle.sh [DIR]        # default: .gpu-bundle in the build tree
#   DIR/run gpu_tests | DIR/run bench_gpu # there; tests/gpu/run-on-device.sh
#                                         # uses it when TCK_GPU_BUNDLE=DIR
#
# Open MPI runs on this one machine without daemons: a program alone is a
# singleton (ess_singleton_isolated), and `DIR/run mpirun -np N DIR/run
# PROGRAM` starts N ranks (plm isolated).
set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILDDIR=${TCK_BUILDDIR:-$SRCDIR}
OUTDIR=${1:-$BUILDDIR/.gpu-bundle}

die() { echo "make-bundle: $*" >&2; exit 1; }

cd "$BUILDDIR"
grep -q '^#define TCK_HAVE_CUDA 1' config.h 2>/dev/null ||
    die "this build has no CUDA tier: configure --with-cuda, then make tests/gpu/gpu_tests tests/bench/bench_gpu"
# libtool leaves the real programs in .libs/ and wrapper scripts beside them.
progs=()
for p in tests/gpu/gpu_tests tests/bench/bench_gpu; do
    real=$(dirname "$p")/.libs/$(basename "$p")
    [ -x "$real" ] || real=$p
    file -L "$real" | grep -q ELF || die "$p is not built (make $p)"
    progs+=("$real")
done
command -v ompi_info >/dev/null || die "ompi_info not found: Open MPI's runtime is needed to pack its components"
mpirun=$(readlink -f "$(command -v mpirun)") || die "mpirun not found"

# Where Open MPI looks for its components and texts, relative to its prefix:
# the bundle recreates that tree under ompi/ and sets OPAL_PREFIX to it.
ompi_path() { ompi_info --path "$1" --parsable | sed -n "s/^path:$1://p"; }
prefix=$(ompi_path prefix)
pkglibdir=$(ompi_path pkglibdir)
pkgdatadir=$(ompi_path pkgdatadir)
case $pkglibdir in "$prefix"/*) ;; *) die "Open MPI's pkglibdir $pkglibdir is not under its prefix $prefix" ;; esac
case $pkgdatadir in "$prefix"/*) ;; *) die "Open MPI's pkgdatadir $pkgdatadir is not under its prefix $prefix" ;; esac

# Replaces an earlier bundle, never anything else.
[ ! -e "$OUTDIR" ] || [ -x "$OUTDIR/run" ] || die "$OUTDIR exists and is not a bundle: name a new folder"
rm -rf "$OUTDIR"
mkdir -p "$OUTDIR/bin" "$OUTDIR/lib" "$OUTDIR/ompi${pkglibdir#"$prefix"}" "$OUTDIR/ompi${pkgdatadir#"$prefix"}"
cp -L "$pkglibdir"/*.so "$OUTDIR/ompi${pkglibdir#"$prefix"}/"
cp -L "$pkgdatadir"/help-*.txt "$OUTDIR/ompi${pkgdatadir#"$prefix"}/" 2>/dev/null || true
for p in "${progs[@]}"; do
    cp -L "$p" "$OUTDIR/bin/"
    strip --strip-debug "$OUTDIR/bin/$(basename "$p")"
done
cp -L "$mpirun" "$OUTDIR/bin/mpirun"
# PMIx (mpirun's server, the ranks' client) loads its own plugins from its
# prefix, found from where its library lives; `run` points it at the copies.
pmix_lib=$(ldd "$OUTDIR/bin/mpirun" "$pkglibdir"/mca_pmix_*.so 2>/dev/null | awk '$1 ~ /^libpmix\.so/ {print $3; exit}')
pmix_prefix=
if [ -n "$pmix_lib" ]; then
    pmix_prefix=$(dirname "$(dirname "$(readlink -f "$pmix_lib")")")
    mkdir -p "$OUTDIR/pmix/lib/pmix"
    cp -L "$pmix_prefix"/lib/pmix/*.so "$OUTDIR/pmix/lib/pmix/" 2>/dev/null || true
fi

# Every library the programs and the components load, by what ldd resolves
# here (libtool's wrapper sets LD_LIBRARY_PATH to the uninstalled library).
# The driver stays behind: it must be the one that matches the machine's
# kernel module.
export LD_LIBRARY_PATH=$BUILDDIR/runtime/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
loader=
for elf in "$OUTDIR"/bin/* "$OUTDIR/ompi${pkglibdir#"$prefix"}"/*.so $(ls "$OUTDIR"/pmix/lib/pmix/*.so 2>/dev/null); do
    ldd "$elf" | while read -r name arrow path _; do
        case $name in
        linux-vdso.so.*) ;;
        libcuda.so.* | libnvidia-*) ;;
        /*) echo "loader $name" ;;
        *) [ "$arrow" = "=>" ] && [ -f "$path" ] && echo "lib $path" ;;
        esac
    done
done | sort -u >"$OUTDIR/.libs.list"
while read -r kind path; do
    if [ "$kind" = loader ]; then
        loader=$(basename "$path")
        cp -L "$path" "$OUTDIR/lib/$loader"
    else
        cp -L "$path" "$OUTDIR/lib/"
    fi
done <"$OUTDIR/.libs.list"
rm -f "$OUTDIR/.libs.list"
[ -n "$loader" ] || loader=$(basename "$(ldd "${progs[0]}" | awk '/^\t\// {print $1}')")
[ -f "$OUTDIR/lib/$loader" ] || [ -f "$OUTDIR/glibc/$loader" ] || die "could not find the dynamic loader of ${progs[0]}"

# The C library and its kin go to glibc/, apart from the rest (lib/): the
# machine's own Python (PyTorch there) keeps its C library and takes the
# rest from lib/, with the bundle's mpirun (pybin/).
mkdir -p "$OUTDIR/glibc" "$OUTDIR/pybin"
for l in "$OUTDIR"/lib/*; do
    case $(basename "$l") in
    ld-linux* | libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | libstdc++.so.* | libgcc_s.so.*)
        mv "$l" "$OUTDIR/glibc/" ;;
    esac
done
cat >"$OUTDIR/pybin/mpirun" <<'EOF'
#!/bin/sh
exec "$(dirname "$0")/../run" mpirun "$@"
EOF
chmod +x "$OUTDIR/pybin/mpirun"

cat >"$OUTDIR/run" <<EOF
#!/bin/sh
# Runs one program of this bundle (gpu_tests, bench_gpu) with the bundle's
# loader and libraries; the machine's own driver (libcuda) is found where
# its loader cache, LD_LIBRARY_PATH or the usual driver folders put it.
#   run python ARGS: the machine's python3 with libtierckpt from here
#   (TIERCKPT_LIBRARY), the libraries of lib/ (not glibc/) and mpirun.
here=\$(cd "\$(dirname "\$0")" && pwd)
prog=\$1; shift
[ "\$prog" = python ] || [ -x "\$here/bin/\$prog" ] || { echo "run: no program \$prog in \$here/bin (\$(ls "\$here/bin" | tr '\n' ' '))" >&2; exit 2; }
driver=
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /lib64 /usr/local/cuda/compat; do
    [ -d "\$d" ] && driver=\$driver:\$d
done
# One machine, no daemons: mpirun starts its ranks itself (plm isolated),
# a lone program is an MPI singleton that starts none.
export OPAL_PREFIX="\$here/ompi" OMPI_MCA_ess_singleton_isolated=1 OMPI_MCA_plm=isolated
# (A machine with a PMIx of its own has plugins at the same compiled-in
# path that do not fit this one: PMIx skips them; say nothing about it.
# Open MPI hands its own show_load_errors to PMIx, so both are set.)
export PMIX_MCA_mca_base_component_path="\$here/pmix/lib/pmix" PMIX_MCA_mca_base_component_show_load_errors=0
export OMPI_MCA_mca_base_component_show_load_errors=0 PMIX_MCA_pcompress_base_silence_warning=1
export OMPI_MCA_pml=\${OMPI_MCA_pml:-ob1} OMPI_MCA_btl=\${OMPI_MCA_btl:-self,vader}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [ "\$prog" = python ]; then
    export LD_LIBRARY_PATH="\$here/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" PATH="\$here/pybin:\$PATH"
    export TIERCKPT_LIBRARY="\$here/lib/libtierckpt.so.0"
    exec python3 "\$@"
fi
exec "\$here/glibc/$loader" --library-path "\$here/glibc:\$here/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\$driver" "\$here/bin/\$prog" "\$@"
EOF
chmod +x "$OUTDIR/run"
echo "make-bundle: $OUTDIR: $(cd "$OUTDIR/bin" && echo *) ($(du -sh "$OUTDIR" | cut -f1)); run there with $OUTDIR/run PROGRAM"
