// Test hooks (documented in tierckpt(3)): TIERCKPT_TEST_CRASH_IN_SAVE=V:R
// makes rank R exit in the middle of copying version V, as a killed
// process would; TIERCKPT_TEST_IGNORE_REPLICA=V:R makes rank R drop the
// requests to copy version V, as a partner that hangs or is cut off;
// TIERCKPT_TEST_NO_ROOM=V:R makes rank R find no slot for its shard of
// version V, as a node store another job or a partner's copies filled.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace tck {

inline bool test_hook(const char *name, std::uint64_t version, int rank) {
    const char *e = std::getenv(name);
    if (!e) return false;
    unsigned long long v = 0;
    int r = -1;
    return std::sscanf(e, "%llu:%d", &v, &r) == 2 && v == version && r == rank;
}

inline bool crash_requested(std::uint64_t version, int rank) {
    return test_hook("TIERCKPT_TEST_CRASH_IN_SAVE", version, rank);
}

inline bool no_room_requested(std::uint64_t version, int rank) {
    return test_hook("TIERCKPT_TEST_NO_ROOM", version, rank);
}

}  // namespace tck
