"""Loads libtierckpt and declares its C API (tierckpt.h) for ctypes.

ctypes (not a compiled extension): the package is plain Python, so it
builds with nothing but the interpreter, works with any Python 3 of the
machine, and CDLL releases the GIL around every call into the library
(saves and restores included).
"""
import ctypes
import os
import threading

SONAME = "libtierckpt.so.0"

# tierckpt_status_t (tierckpt.h); the numbers are part of the ABI.
STATUS_NAMES = {
    0: "TIERCKPT_OK",
    1: "TIERCKPT_ERR_INVALID",
    2: "TIERCKPT_ERR_NO_MEMORY",
    3: "TIERCKPT_ERR_IO",
    4: "TIERCKPT_ERR_NOT_FOUND",
    5: "TIERCKPT_ERR_CORRUPT",
    6: "TIERCKPT_ERR_PEER",
    7: "TIERCKPT_ERR_TIMEOUT",
    8: "TIERCKPT_ERR_UNSUPPORTED",
    9: "TIERCKPT_ERR_INTERNAL",
}

MPI_THREAD_FUNNELED = 1  # the same in Open MPI and MPICH
MPI_THREAD_MULTIPLE = 3


class CStats(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_uint64),
        ("bytes", ctypes.c_uint64),
        ("wait_ms", ctypes.c_double),
        ("stall_ms", ctypes.c_double),
        ("checksum_ms", ctypes.c_double),
        ("commit_ms", ctypes.c_double),
        ("committed", ctypes.c_int),
        # Appended with the persistent tier: this struct must match
        # tierckpt_stats_t field for field (the library writes all of it).
        ("persist_version", ctypes.c_uint64),
        ("persist_ms", ctypes.c_double),
        ("persist_failures", ctypes.c_uint64),
        ("persist_status", ctypes.c_int),
        ("persist_skipped", ctypes.c_uint64),
        ("committed_version", ctypes.c_uint64),
        ("superseded", ctypes.c_uint64),
        ("room_waits", ctypes.c_uint64),
    ]


class CSchedule(ctypes.Structure):
    # tierckpt_schedule_t, field for field.
    _fields_ = [
        ("mode", ctypes.c_char * 16),
        ("bound", ctypes.c_char * 16),
        ("decisions", ctypes.c_uint64),
        ("steps", ctypes.c_uint64),
        ("next_due_step", ctypes.c_uint64),
        ("interval_s", ctypes.c_double),
        ("step_s", ctypes.c_double),
        ("stall_s", ctypes.c_double),
        ("commit_s", ctypes.c_double),
        ("flush_s", ctypes.c_double),
        ("job_mtbf_s", ctypes.c_double),
        ("optimum_s", ctypes.c_double),
        ("overhead", ctypes.c_double),
        ("save_overhead", ctypes.c_double),
        ("lost_per_failure_s", ctypes.c_double),
        ("persist_every", ctypes.c_uint64),
        ("persist_bound", ctypes.c_char * 16),
    ]


_lock = threading.Lock()
_lib = None
_path = None


def candidates():
    """Where the library is looked for, in order: $TIERCKPT_LIBRARY alone when
    set; else the libdir this package was built for, then the loader's own
    search (LD_LIBRARY_PATH, ld.so.cache)."""
    explicit = os.environ.get("TIERCKPT_LIBRARY")
    if explicit:
        return [explicit]
    found = []
    try:
        from . import _config

        found.append(os.path.join(_config.LIBDIR, SONAME))
    except ImportError:  # a source tree that was not built
        pass
    found.append(SONAME)
    return found


def _declare(lib):
    c_int, c_char_p, c_void_p, c_uint64 = ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_uint64
    p = ctypes.POINTER
    table = {
        "tierckpt_version": (c_char_p, []),
        "tierckpt_status_string": (c_char_p, [c_int]),
        "tierckpt_last_error": (c_char_p, []),
        "tierckpt_features": (c_char_p, []),
        "tierckpt_options_new": (c_void_p, []),
        "tierckpt_options_set": (c_int, [c_void_p, c_char_p, c_char_p]),
        "tierckpt_options_free": (None, [c_void_p]),
        "tierckpt_open": (c_int, [c_void_p, p(c_void_p)]),
        # MPI_Comm is a pointer in Open MPI and an int in MPICH: passed as the
        # integer handle mpi4py gives (MPI._handleof).
        "tierckpt_open_comm": (c_int, [c_void_p, c_void_p, p(c_void_p)]),
        "tierckpt_register": (c_int, [c_void_p, c_char_p, c_void_p, ctypes.c_size_t]),
        "tierckpt_register_slice": (c_int, [c_void_p, c_char_p, c_void_p, ctypes.c_size_t, c_uint64, c_uint64]),
        "tierckpt_register_replicated": (c_int, [c_void_p, c_char_p, c_void_p, ctypes.c_size_t]),
        "tierckpt_save": (c_int, [c_void_p, c_uint64]),
        "tierckpt_test": (c_int, [c_void_p, p(c_int)]),
        "tierckpt_wait": (c_int, [c_void_p]),
        "tierckpt_due": (c_int, [c_void_p, ctypes.c_uint64, p(c_int)]),
        "tierckpt_get_schedule": (c_int, [c_void_p, p(CSchedule)]),
        "tierckpt_agree": (c_int, [c_void_p, c_int, p(c_int)]),
        "tierckpt_unregister_all": (c_int, [c_void_p]),
        "tierckpt_restore": (c_int, [c_void_p, p(c_int), p(c_uint64)]),
        "tierckpt_fetch": (c_int, [c_void_p, p(c_int), p(c_uint64)]),
        "tierckpt_fetch_any": (c_int, [c_void_p, p(c_int), p(c_uint64), p(ctypes.c_uint32)]),
        "tierckpt_fetched_count": (c_int, [c_void_p, p(ctypes.c_size_t)]),
        "tierckpt_fetched_region": (c_int, [c_void_p, ctypes.c_size_t, p(c_char_p), p(c_uint64)]),
        "tierckpt_fetched_read": (c_int, [c_void_p, c_char_p, c_uint64, c_void_p, c_uint64]),
        "tierckpt_fetch_drop": (c_int, [c_void_p]),
        "tierckpt_restore_source": (c_char_p, [c_void_p]),
        "tierckpt_stage_path": (c_char_p, [c_void_p]),
        "tierckpt_get_stats": (c_int, [c_void_p, p(CStats)]),
        "tierckpt_close": (c_int, [c_void_p]),
        # MPI itself, reached through libtierckpt's dependency on libmpi.
        "MPI_Initialized": (c_int, [p(c_int)]),
        "MPI_Finalized": (c_int, [p(c_int)]),
        "MPI_Init_thread": (c_int, [c_void_p, c_void_p, c_int, p(c_int)]),
        "MPI_Finalize": (c_int, []),
        "MPI_Query_thread": (c_int, [p(c_int)]),
        "MPI_Is_thread_main": (c_int, [p(c_int)]),
    }
    for name, (res, args) in table.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args


def get():
    """The loaded library (loaded on first use)."""
    global _lib, _path
    with _lock:
        if _lib is not None:
            return _lib
        errors = []
        for path in candidates():
            if os.sep in path and not os.path.exists(path):
                errors.append(f"{path}: no such file")
                continue
            try:
                # RTLD_GLOBAL: Open MPI's plugins, loaded later by MPI_Init,
                # resolve their symbols against libmpi.
                lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError as e:
                errors.append(str(e))
                continue
            _declare(lib)
            _lib, _path = lib, path
            return lib
        from . import TierckptError

        hint = (
            "TIERCKPT_LIBRARY names the library to use"
            if os.environ.get("TIERCKPT_LIBRARY")
            else "install tierckpt, or point LD_LIBRARY_PATH at its libdir, or set TIERCKPT_LIBRARY=/path/to/" + SONAME
        )
        raise TierckptError(8, f"cannot load libtierckpt ({'; '.join(errors)}): {hint}")


def path():
    """The file the library was loaded from (None before the first use)."""
    return _path
