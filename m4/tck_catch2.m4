# TCK_CHECK_CATCH2: Catch2 (v2, header-only) for the unit tests, tri-state.
AC_DEFUN([TCK_CHECK_CATCH2], [
    TCK_ARG_WITH_TRISTATE([catch2], [Catch2 for the unit tests])
    tck_catch2_found=no
    CATCH2_CPPFLAGS=""
    AS_IF([test "x$with_catch2" != xno], [
        AS_IF([test "x$with_catch2" != xyes && test "x$with_catch2" != xcheck],
              [CATCH2_CPPFLAGS="-I$with_catch2/include"])
        save_CPPFLAGS="$CPPFLAGS"; CPPFLAGS="$CPPFLAGS $CATCH2_CPPFLAGS"
        AC_CHECK_HEADER([catch2/catch.hpp], [tck_catch2_found=yes], [tck_catch2_found=no])
        CPPFLAGS="$save_CPPFLAGS"
        AS_IF([test "x$tck_catch2_found" = xno],
              [TCK_TRISTATE_FAIL([catch2], [Catch2 (catch2/catch.hpp)], [On Debian: apt-get install catch2.])])
    ])
    AS_IF([test "x$tck_catch2_found" = xyes], [tck_catch2_summary=yes], [tck_catch2_summary="no (unit tests skipped)"])
    AC_SUBST([CATCH2_CPPFLAGS])
    AM_CONDITIONAL([HAVE_CATCH2], [test "x$tck_catch2_found" = xyes])
])
