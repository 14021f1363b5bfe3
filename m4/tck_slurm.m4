# TCK_CHECK_SLURM: slurm/spank.h for the SPANK plugin. Required unless
# --without-slurm, which builds the runtime alone.
AC_DEFUN([TCK_CHECK_SLURM], [
    AC_ARG_WITH([slurm], [AS_HELP_STRING([--with-slurm@<:@=DIR@:>@],
        [Slurm installation with include/slurm/spank.h; --without-slurm builds the runtime alone])],
        [], [with_slurm=yes])
    SLURM_CPPFLAGS=""
    AS_IF([test "x$with_slurm" != xno], [
        AS_IF([test "x$with_slurm" != xyes], [SLURM_CPPFLAGS="-I$with_slurm/include"])
        save_CPPFLAGS="$CPPFLAGS"; CPPFLAGS="$CPPFLAGS $SLURM_CPPFLAGS"
        AC_CHECK_HEADER([slurm/spank.h], [],
            [AC_MSG_ERROR([slurm/spank.h not found: on Debian, apt-get install libslurm-dev; or --with-slurm=DIR; or --without-slurm to build the runtime alone])])
        AC_MSG_CHECKING([Slurm version])
        AC_COMPUTE_INT([tck_slurm_vnum], [SLURM_VERSION_NUMBER], [[#include <slurm/slurm_version.h>]],
                       [tck_slurm_vnum=0])
        tck_slurm_version="$((tck_slurm_vnum >> 16)).$(((tck_slurm_vnum >> 8) & 255)).$((tck_slurm_vnum & 255))"
        AC_MSG_RESULT([$tck_slurm_version])
        CPPFLAGS="$save_CPPFLAGS"
        AC_PATH_PROGS([SRUN], [srun], [srun])
        tck_slurm_summary="yes ($tck_slurm_version)"
    ], [tck_slurm_summary="no (--without-slurm)"])
    AC_SUBST([SLURM_CPPFLAGS])
    AM_CONDITIONAL([HAVE_SLURM], [test "x$with_slurm" != xno])
])
