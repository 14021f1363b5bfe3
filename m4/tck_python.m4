# TCK_CHECK_PYTHON: the tierckpt Python package (pure Python over the C
# API through ctypes), tri-state. --with-python=PYTHON names the
# interpreter; otherwise $PYTHON, then /usr/bin/python3 (the interpreter
# Debian's python3-torch, python3-numpy and python3-mpi4py belong to), then
# python3 on PATH. Sets pythondir/pkgpythondir through AM_PATH_PYTHON.
AC_DEFUN([TCK_CHECK_PYTHON], [
    AC_ARG_WITH([python],
        [AS_HELP_STRING([--with-python@<:@=PYTHON@:>@],
            [install the tierckpt Python package for the interpreter PYTHON (default: use if found)])],
        [], [with_python=check])
    tck_python_found=no
    AS_IF([test "x$with_python" != xno], [
        AS_IF([test "x$with_python" != xyes && test "x$with_python" != xcheck], [PYTHON="$with_python"])
        AS_IF([test -z "$PYTHON"], [AC_PATH_PROGS([PYTHON], [python3], [], [/usr/bin$PATH_SEPARATOR$PATH])])
        AS_IF([test -n "$PYTHON" && "$PYTHON" -c 'import sys' >/dev/null 2>&1],
              [AM_PATH_PYTHON([3.7], [tck_python_found=yes], [:])],
              [test -n "$PYTHON"], [AC_MSG_WARN([$PYTHON does not run])])
        AS_IF([test "x$tck_python_found" = xno],
              [TCK_TRISTATE_FAIL([python], [Python 3.7 or newer],
                                 [On Debian: apt-get install python3, or name it: --with-python=/path/to/python3.])])
    ])
    # Debian's Python looks in PREFIX/lib/pythonX.Y/dist-packages, not in
    # automake's site-packages: install where the interpreter looks.
    AS_IF([test "x$tck_python_found" = xyes], [
        tck_py_prefix=$prefix
        test "x$tck_py_prefix" = xNONE && tck_py_prefix=$ac_default_prefix
        AS_IF([$PYTHON -c "import sys; sys.exit(0 if '$tck_py_prefix/lib/python$PYTHON_VERSION/dist-packages' in sys.path else 1)" 2>/dev/null],
              [pythondir="\${PYTHON_PREFIX}/lib/python$PYTHON_VERSION/dist-packages"
               pkgpythondir="\${pythondir}/tierckpt"])
    ])
    AS_IF([test "x$tck_python_found" = xyes],
          [tck_python_summary="$PYTHON ($PYTHON_VERSION)"],
          [tck_python_summary="no (Python package not built)"; PYTHON=:])
    AC_SUBST([tck_python_found])
    AM_CONDITIONAL([HAVE_PYTHON], [test "x$tck_python_found" = xyes])
])
