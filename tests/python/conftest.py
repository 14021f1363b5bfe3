"""Fixtures of the binding's tests (tests/run runs them with pytest, against
the build tree's libtierckpt: TIERCKPT_LIBRARY, PYTHONPATH)."""
import itertools
import os
import shutil
import subprocess
import sys

import pytest

_n = itertools.count()


@pytest.fixture
def store():
    """A path for a fresh node store on the machine's tmpfs, removed after."""
    path = f"/dev/shm/tierckpt-pytest-{os.getpid()}-{next(_n)}"
    yield path
    if os.path.exists(path):
        os.unlink(path)


def run_two_ranks(script, *args):
    """Runs tests/python/SCRIPT under mpirun with two ranks (skips without
    mpirun) and returns the finished process."""
    mpirun = shutil.which("mpirun")
    if not mpirun:
        pytest.skip("mpirun not found (apt-get install openmpi-bin)")
    here = os.path.dirname(os.path.abspath(__file__))
    cmd = [mpirun, "--oversubscribe", "-n", "2"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    env = dict(os.environ, OMPI_MCA_mpi_yield_when_idle="1", OMPI_MCA_btl="self,vader,tcp", OMPI_MCA_pml="ob1",
               OMPI_MCA_btl_vader_backing_directory="/tmp")
    return subprocess.run(cmd + [sys.executable, os.path.join(here, script), *args],
                          capture_output=True, text=True, env=env, timeout=300)
