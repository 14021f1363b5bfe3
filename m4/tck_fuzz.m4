# TCK_CHECK_FUZZER: libFuzzer (clang's -fsanitize=fuzzer) for the fuzz
# targets of the parsers privileged code runs on users' files
# (tests/fuzz/), tri-state: --with-libfuzzer[=CLANGXX] requires it,
# --without-libfuzzer turns the targets off, absent: use if found. The
# targets are built with clang++ (the rest of the project with $CXX).
AC_DEFUN([TCK_CHECK_FUZZER], [
    TCK_ARG_WITH_TRISTATE([libfuzzer], [libFuzzer (clang++ -fsanitize=fuzzer) for the fuzz targets])
    tck_fuzz_found=no
    FUZZ_CXX=""
    AS_IF([test "x$with_libfuzzer" != xno], [
        AS_IF([test "x$with_libfuzzer" != xyes && test "x$with_libfuzzer" != xcheck],
              [tck_fuzz_candidates="$with_libfuzzer"],
              [tck_fuzz_candidates="clang++ clang++-14 clang++-15 clang++-16"])
        for tck_cxx in $tck_fuzz_candidates; do
            AC_MSG_CHECKING([whether $tck_cxx links a libFuzzer target])
            cat >conftest-fuzz.cpp <<'FUZZEOF'
#include <cstddef>
#include <cstdint>
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *, std::size_t) { return 0; }
FUZZEOF
            AS_IF([$tck_cxx -std=c++17 -fsanitize=fuzzer,address,undefined conftest-fuzz.cpp -o conftest-fuzz >&AS_MESSAGE_LOG_FD 2>&1],
                  [tck_fuzz_found=yes; FUZZ_CXX="$tck_cxx"; AC_MSG_RESULT([yes])],
                  [AC_MSG_RESULT([no])])
            rm -f conftest-fuzz.cpp conftest-fuzz
            test "x$tck_fuzz_found" = xyes && break
        done
        AS_IF([test "x$tck_fuzz_found" = xno],
              [TCK_TRISTATE_FAIL([libfuzzer], [a clang++ with libFuzzer],
                                 [On Debian: apt-get install clang libclang-rt-14-dev.])])
    ])
    AS_IF([test "x$tck_fuzz_found" = xyes], [tck_fuzz_summary="yes ($FUZZ_CXX)"],
          [tck_fuzz_summary="no (fuzz targets skipped)"])
    AC_SUBST([FUZZ_CXX])
    AM_CONDITIONAL([HAVE_FUZZER], [test "x$tck_fuzz_found" = xyes])
])
