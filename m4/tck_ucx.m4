# TCK_CHECK_UCX: UCX (ucp) transport, tri-state.
AC_DEFUN([TCK_CHECK_UCX], [
    TCK_ARG_WITH_TRISTATE([ucx], [UCX transport for InfiniBand/RoCE])
    tck_ucx_found=no
    AS_IF([test "x$with_ucx" != xno], [
        AS_IF([test "x$with_ucx" != xyes && test "x$with_ucx" != xcheck],
              [export PKG_CONFIG_PATH="$with_ucx/lib/pkgconfig:$PKG_CONFIG_PATH"])
        PKG_CHECK_MODULES([UCX], [ucx >= 1.10], [tck_ucx_found=yes], [tck_ucx_found=no])
        AS_IF([test "x$tck_ucx_found" = xno],
              [TCK_TRISTATE_FAIL([ucx], [UCX (>= 1.10)], [On Debian: apt-get install libucx-dev.])])
    ])
    AS_IF([test "x$tck_ucx_found" = xyes], [
        AC_DEFINE([TCK_HAVE_UCX], [1], [Build the UCX transport])
        tck_ucx_summary="yes ($($PKG_CONFIG --modversion ucx))"
    ], [tck_ucx_summary="no"])
    AM_CONDITIONAL([HAVE_UCX], [test "x$tck_ucx_found" = xyes])
])
