// Catch2's main, compiled once. The automake reporter prints one
// ":test-result: PASS|FAIL name" line per test case, which tests/run counts.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <catch2/catch_reporter_automake.hpp>
