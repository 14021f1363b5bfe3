#include "config.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "tierckpt/tierckpt.hpp"

TEST_CASE("version matches the header", "[api]") {
    std::string v = tierckpt_version();
    CHECK(v == std::to_string(TIERCKPT_VERSION_MAJOR) + "." + std::to_string(TIERCKPT_VERSION_MINOR) + "." +
                   std::to_string(TIERCKPT_VERSION_PATCH));
    CHECK(tierckpt::version() == v);
}

TEST_CASE("every status has its own description", "[api]") {
    CHECK(std::strcmp(tierckpt_status_string(TIERCKPT_OK), "success") == 0);
    for (int a = TIERCKPT_OK; a <= TIERCKPT_ERR_INTERNAL; ++a) {
        CHECK(std::strcmp(tierckpt_status_string(static_cast<tierckpt_status_t>(a)), "unknown status") != 0);
        for (int b = a + 1; b <= TIERCKPT_ERR_INTERNAL; ++b) {
            CHECK(std::strcmp(tierckpt_status_string(static_cast<tierckpt_status_t>(a)),
                              tierckpt_status_string(static_cast<tierckpt_status_t>(b))) != 0);
        }
    }
    CHECK(std::strcmp(tierckpt_status_string(static_cast<tierckpt_status_t>(999)), "unknown status") == 0);
}

TEST_CASE("C++ check() turns a status into an exception", "[api]") {
    CHECK_NOTHROW(tierckpt::check(TIERCKPT_OK));
    try {
        tierckpt::check(TIERCKPT_ERR_CORRUPT);
        FAIL("no exception");
    } catch (const tierckpt::Error &e) {
        CHECK(e.code() == TIERCKPT_ERR_CORRUPT);
        CHECK(std::string(e.what()).size() > 0);
    }
}

TEST_CASE("features list only what configure found", "[api]") {
    std::string f = tierckpt_features();
    CHECK(f.find("  ") == std::string::npos);
    CHECK((f.empty() || f.back() != ' '));
#ifdef TCK_HAVE_UCX
    CHECK(f.find("ucx") != std::string::npos);
#else
    CHECK(f.find("ucx") == std::string::npos);
#endif
}
