# TCK_ARG_WITH_TRISTATE(NAME, HELP)
# --with-NAME[=DIR]: required, fail loudly when missing;
# --without-NAME: off; absent: use if found. Sets with_NAME to
# yes, no, check or a directory.
AC_DEFUN([TCK_ARG_WITH_TRISTATE], [
    AC_ARG_WITH([$1], [AS_HELP_STRING([--with-$1@<:@=DIR@:>@], [$2 (default: use if found)])],
                [], [with_$1=check])
])

# TCK_TRISTATE_FAIL(NAME, WHAT, FIX): called when NAME was not found.
AC_DEFUN([TCK_TRISTATE_FAIL], [
    AS_IF([test "x$with_$1" != xcheck],
          [AC_MSG_ERROR([--with-$1 was given but $2 was not found. $3])])
])
