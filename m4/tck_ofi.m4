# TCK_CHECK_OFI: libfabric transport (AWS EFA, verbs, tcp), tri-state.
AC_DEFUN([TCK_CHECK_OFI], [
    TCK_ARG_WITH_TRISTATE([ofi], [libfabric transport for AWS EFA])
    tck_ofi_found=no
    AS_IF([test "x$with_ofi" != xno], [
        AS_IF([test "x$with_ofi" != xyes && test "x$with_ofi" != xcheck],
              [export PKG_CONFIG_PATH="$with_ofi/lib/pkgconfig:$PKG_CONFIG_PATH"])
        PKG_CHECK_MODULES([OFI], [libfabric >= 1.12], [tck_ofi_found=yes], [tck_ofi_found=no])
        AS_IF([test "x$tck_ofi_found" = xno],
              [TCK_TRISTATE_FAIL([ofi], [libfabric (>= 1.12)], [On Debian: apt-get install libfabric-dev.])])
    ])
    AS_IF([test "x$tck_ofi_found" = xyes], [
        AC_DEFINE([TCK_HAVE_OFI], [1], [Build the libfabric transport])
        tck_ofi_summary="yes ($($PKG_CONFIG --modversion libfabric))"
    ], [tck_ofi_summary="no"])
    AM_CONDITIONAL([HAVE_OFI], [test "x$tck_ofi_found" = xyes])
])
