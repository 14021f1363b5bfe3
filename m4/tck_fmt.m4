# TCK_CHECK_FMT: the fmt library (required).
AC_DEFUN([TCK_CHECK_FMT], [
    PKG_CHECK_MODULES([FMT], [fmt >= 7], [tck_fmt_summary="yes ($($PKG_CONFIG --modversion fmt))"],
        [AC_MSG_ERROR([fmt (>= 7) is required: on Debian, apt-get install libfmt-dev (or run tools/install-deps)])])
])
