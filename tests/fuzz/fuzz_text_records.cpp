// Fuzz target: the small text records privileged code parses. The
// persistent tier's MANIFEST and shard sidecars lie in the job user's
// directory (the epilog's flush and `tierckpt verify` read them); the
// plugin's reservation record is root's own, parsed just as strictly. Each
// parser gets the same input, and the MANIFEST parser also a copy whose
// end line carries the right CRC32C (a user can compute it), so that the
// fuzzer reaches the checks behind the checksum.
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "store/crc32c.hpp"
#include "store/persist.hpp"
#include "spank/store.hpp"

namespace {
void check_manifest(const std::string &text) {
    if (auto m = tck::persist::parse_manifest(text)) {
        // What parses must format back to something that parses the same.
        auto again = tck::persist::parse_manifest(tck::persist::format_manifest(*m));
        if (!again || again->world != m->world || again->version != m->version) __builtin_trap();
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    std::string text(reinterpret_cast<const char *>(data), size);
    check_manifest(text);
    auto end = text.rfind("end crc32c ");
    if (end != std::string::npos) {
        std::string fixed = text.substr(0, end) +
                            fmt::format("end crc32c {:08x}\n", tck::crc32c(text.data(), end));
        check_manifest(fixed);
    }
    if (auto s = tck::persist::parse_sidecar(text)) {
        auto again = tck::persist::parse_sidecar(tck::persist::format_sidecar(*s));
        if (!again || again->rank != s->rank || again->bytes != s->bytes) __builtin_trap();
    }
    if (auto r = tck::spank::parse_reservation(text)) {
        auto again = tck::spank::parse_reservation(tck::spank::format_reservation(*r));
        if (!again || again->bytes != r->bytes || again->uid != r->uid) __builtin_trap();
    }
    std::uint64_t v = 0;
    (void)tck::persist::parse_version_dir(text, v);
    return 0;
}
