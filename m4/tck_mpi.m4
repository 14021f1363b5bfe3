# TCK_CHECK_MPI: MPI for the runtime (required). We compile with the plain
# compiler and take Open MPI's flags from pkg-config (ompi-c), falling back
# to the wrapper's --showme; MPICC can name another wrapper.
AC_DEFUN([TCK_CHECK_MPI], [
    AC_ARG_VAR([MPICC], [MPI C compiler wrapper whose flags are used when pkg-config has no ompi-c])
    PKG_CHECK_MODULES([MPI], [ompi-c], [tck_mpi_found=yes], [tck_mpi_found=no])
    AS_IF([test "x$tck_mpi_found" = xno], [
        AC_PATH_PROGS([MPICC], [mpicc])
        AS_IF([test -n "$MPICC"], [
            MPI_CFLAGS=$($MPICC --showme:compile 2>/dev/null)
            MPI_LIBS=$($MPICC --showme:link 2>/dev/null)
            AS_IF([test -n "$MPI_LIBS"], [tck_mpi_found=yes])
        ])
    ])
    # We use the C API from C++; keep the deprecated C++ bindings out.
    MPI_CFLAGS="-DOMPI_SKIP_MPICXX=1 -DMPICH_SKIP_MPICXX=1 $MPI_CFLAGS"
    AS_IF([test "x$tck_mpi_found" = xyes], [
        save_CPPFLAGS="$CPPFLAGS"; save_LIBS="$LIBS"
        CPPFLAGS="$CPPFLAGS $MPI_CFLAGS"; LIBS="$MPI_LIBS $LIBS"
        AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <mpi.h>]], [[MPI_Init(0, 0); MPI_Finalize();]])],
                       [], [tck_mpi_found=no])
        CPPFLAGS="$save_CPPFLAGS"; LIBS="$save_LIBS"
    ])
    AS_IF([test "x$tck_mpi_found" = xno],
          [AC_MSG_ERROR([MPI is required: on Debian, apt-get install libopenmpi-dev openmpi-bin (or run tools/install-deps)])])
    AC_PATH_PROGS([MPIRUN], [mpirun], [mpirun])
    tck_mpi_summary="yes (Open MPI $($PKG_CONFIG --modversion ompi-c 2>/dev/null))"
    AC_SUBST([MPI_CFLAGS])
    AC_SUBST([MPI_LIBS])
])
