"""Fixtures of the binding's tests (tests/run runs them with pytest, against
the build tree's libtierckpt: TIERCKPT_LIBRARY, PYTHONPATH)."""
import itertools
import os

import pytest

_n = itertools.count()


@pytest.fixture
def store():
    """A path for a fresh node store on the machine's tmpfs, removed after."""
    path = f"/dev/shm/tierckpt-pytest-{os.getpid()}-{next(_n)}"
    yield path
    if os.path.exists(path):
        os.unlink(path)
