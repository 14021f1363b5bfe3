# TCK_CHECK_CUDA: CUDA tier (nvcc, cuda_runtime.h, libcudart), tri-state.
# --with-cuda=DIR names the toolkit; otherwise CUDA_HOME, then nvcc on
# PATH, then /usr/local/cuda are tried.
AC_DEFUN([TCK_CHECK_CUDA], [
    TCK_ARG_WITH_TRISTATE([cuda], [CUDA tier for GPU device memory])
    AC_ARG_VAR([NVCC], [CUDA compiler])
    tck_cuda_found=no
    CUDA_CPPFLAGS=""; CUDA_LDFLAGS=""; CUDA_LIBS=""
    AS_IF([test "x$with_cuda" != xno], [
        tck_cuda_dir=""
        AS_IF([test "x$with_cuda" != xyes && test "x$with_cuda" != xcheck], [tck_cuda_dir="$with_cuda"],
              [test -n "$CUDA_HOME"], [tck_cuda_dir="$CUDA_HOME"],
              [test -x /usr/local/cuda/bin/nvcc], [tck_cuda_dir=/usr/local/cuda])
        AS_IF([test -z "$NVCC"], [
            AS_IF([test -n "$tck_cuda_dir" && test -x "$tck_cuda_dir/bin/nvcc"],
                  [NVCC="$tck_cuda_dir/bin/nvcc"], [AC_PATH_PROGS([NVCC], [nvcc])])
        ])
        AS_IF([test -n "$NVCC" && test -z "$tck_cuda_dir"],
              [tck_cuda_dir=$(dirname "$(dirname "$NVCC")")])
        AS_IF([test -n "$NVCC" && test -x "$NVCC"], [
            CUDA_CPPFLAGS="-I$tck_cuda_dir/include"
            tck_cuda_libdir="$tck_cuda_dir/lib64"
            AS_IF([test ! -e "$tck_cuda_libdir/libcudart.so" && test -d "$tck_cuda_dir/targets/x86_64-linux/lib"],
                  [tck_cuda_libdir="$tck_cuda_dir/targets/x86_64-linux/lib"])
            CUDA_LDFLAGS="-L$tck_cuda_libdir -Wl,-rpath,$tck_cuda_libdir"
            CUDA_LIBS="-lcudart"
            save_CPPFLAGS="$CPPFLAGS"; save_LDFLAGS="$LDFLAGS"; save_LIBS="$LIBS"
            CPPFLAGS="$CPPFLAGS $CUDA_CPPFLAGS"; LDFLAGS="$LDFLAGS $CUDA_LDFLAGS"; LIBS="$CUDA_LIBS $LIBS"
            AC_MSG_CHECKING([for cudart in $tck_cuda_dir])
            AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <cuda_runtime.h>]], [[int n = 0; cudaGetDeviceCount(&n);]])],
                           [tck_cuda_found=yes], [tck_cuda_found=no])
            AC_MSG_RESULT([$tck_cuda_found])
            CPPFLAGS="$save_CPPFLAGS"; LDFLAGS="$save_LDFLAGS"; LIBS="$save_LIBS"
        ])
        AS_IF([test "x$tck_cuda_found" = xno],
              [TCK_TRISTATE_FAIL([cuda], [the CUDA toolkit (nvcc, cuda_runtime.h, libcudart)],
                                 [Give its prefix: --with-cuda=/usr/local/cuda.])])
    ])
    AS_IF([test "x$tck_cuda_found" = xyes], [
        AC_DEFINE([TCK_HAVE_CUDA], [1], [Build the CUDA tier])
        tck_cuda_summary="yes ($($NVCC --version | sed -n 's/.*release \([[0-9.]]*\).*/\1/p'))"
    ], [tck_cuda_summary="no"])
    AC_SUBST([CUDA_CPPFLAGS])
    AC_SUBST([CUDA_LDFLAGS])
    AC_SUBST([CUDA_LIBS])
    AM_CONDITIONAL([HAVE_CUDA], [test "x$tck_cuda_found" = xyes])
])
