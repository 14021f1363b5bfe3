# shellcheck shell=bash
# shellcheck disable=SC2016  # commands run later, in the allocation
# Where ML engineers train: their own virtual environment. The test user makes
# a fresh venv (--system-site-packages, to reach Debian's PyTorch), installs
# the package from the sdist `make python-sdist` builds (pip, no network),
# and trains in a job with the venv's python, PYTHONPATH and
# TIERCKPT_LIBRARY unset: the package is the venv's own, libtierckpt comes
# from the loader's search path. A second step resumes from the first's
# checkpoint and ends as a straight run.
# shellcheck source=lib.sh
. "$TCK_SRCDIR/tests/cluster/lib.sh"

need_torch_example

step "make python-sdist; a fresh venv of the test user; pip install from the sdist, offline"
make -s --no-print-directory -C "$TCK_BUILDDIR" python-sdist >/dev/null || fail "make python-sdist failed"
sdist=$(ls "$TCK_BUILDDIR"/tierckpt-python-*.tar.gz) || fail "no sdist in $TCK_BUILDDIR"
work=$(ck mktemp -d "$STATE/jobs/venv.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$sdist" "$work/" && chmod a+r "$work/$(basename "$sdist")"
venv=$work/venv
ck "$PY" -m venv --system-site-packages "$venv" ||
    fail "python3 -m venv failed (apt-get install python3-venv)"
ck env -u PYTHONPATH "$venv/bin/pip" install --no-build-isolation --no-index --quiet "$work/$(basename "$sdist")" ||
    fail "pip install of the sdist failed"

TRAIN="$venv/bin/python $EX --model moe --ckpt-every 4"

NOENV='unset PYTHONPATH TIERCKPT_LIBRARY'
OPTS=(--ckpt-mem=256M --ckpt-replicas=1)

step "in a job, with the venv's python and neither PYTHONPATH nor TIERCKPT_LIBRARY: what it imports, a straight run"
ref=$(ck salloc -N2 -n4 "${OPTS[@]}" bash -c "
    $NOENV
    srun --mpi=pmix -N1 -n1 $venv/bin/python -c 'import tierckpt, tierckpt._lib as l; l.get(); print(\"package\", tierckpt.__file__); print(\"library\", l.path())'
    srun --mpi=pmix $TRAIN --steps 12
")
echo "$ref"
assert_match "$ref" "^package $venv/lib/python3[.0-9]*/site-packages/tierckpt/__init__.py$" "the venv's own package is imported"
assert_match "$ref" '^library (libtierckpt\.so\.0|/.*/libtierckpt\.so\.0)$' "libtierckpt is found without TIERCKPT_LIBRARY"
assert_eq "$(finals "$ref" | grep -c ' step=12 ')" 4 "every rank of the straight run ends"

step "another job: 8 steps, then a second step resumes up to 12"
out=$(ck salloc -N2 -n4 "${OPTS[@]}" bash -c "
    $NOENV
    srun --mpi=pmix $TRAIN --steps 8 >/dev/null
    srun --mpi=pmix $TRAIN --steps 12
")
echo "$out"
assert_eq "$(grep -c '^rank=[0-3] restored step=8 source=local$' <<<"$out")" 4 "every rank restores step 8"
assert_eq "$(finals "$out")" "$(finals "$ref")" "the resumed run ends as the straight one"
