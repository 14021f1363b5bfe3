// Fuzz target: a node store as privileged code reads it (tierckpt ls,
// verify and flush as root; the epilog's flush). The input is the whole
// store file: header, slot directory, persistent-tier record and slot data,
// all of which the store's user can write. Everything those readers do runs
// on it: the pread-based reader, every record's bounds, each shard's
// checksum and manifest, and the end-of-job flush into a scratch
// persistent directory (always given as the override: the directory the
// input names is never touched). Nothing may crash, hang or allocate in
// proportion to what the input claims. A user can compute CRC32C as well
// as we can: for inputs of even length the harness first makes every
// checksum the input's structures carry valid (header, slot records,
// persistent-tier and run records), so that the fuzzer explores forged
// records that pass them, not only damaged ones.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/log.hpp"
#include "store/crc32c.hpp"
#include "store/persist.hpp"
#include "store/store_format.hpp"
#include "fuzz_util.hpp"

namespace {

using namespace tck::store;

template <typename T>
void fix_crc(std::vector<std::uint8_t> &b, std::size_t at, std::size_t crc_field) {
    if (b.size() < at + sizeof(T)) return;
    std::uint32_t c = tck::crc32c(b.data() + at, crc_field);
    std::memcpy(b.data() + at + crc_field, &c, sizeof c);
}

void make_checksums_valid(std::vector<std::uint8_t> &b) {
    fix_crc<Header>(b, 0, offsetof(Header, header_crc));
    fix_crc<SessionInfo>(b, kSessionInfoOffset, offsetof(SessionInfo, crc));
    fix_crc<PersistInfo>(b, kPersistInfoOffset, offsetof(PersistInfo, crc));
    for (std::uint32_t i = 0; i < kMaxSlots; ++i) {
        fix_crc<SlotRecord>(b, kHeaderBytes + i * kRecordBytes, offsetof(SlotRecord, record_crc));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    static tck::fuzz::ScratchDir scratch("tck-fuzz-store");
    tck::log::set_level(tck::log::Level::error);
    int fd = ::memfd_create("store", MFD_CLOEXEC);
    if (fd < 0) std::abort();
    std::vector<std::uint8_t> bytes(data, data + size);
    if (size % 2 == 0) make_checksums_valid(bytes);
    if (size && ::write(fd, bytes.data(), size) != static_cast<ssize_t>(size)) std::abort();
    auto reader = tck::store::StoreReader::from_fd(tck::UniqueFd(fd), "fuzz-store");
    if (!reader) return 0;
    (void)reader->persist_info();
    for (const auto &s : reader->records()) {
        (void)reader->reread_record(s.slot);
        (void)reader->crc(s.rec.offset, s.rec.payload_bytes);
        (void)reader->piece_table(s.rec);  // bounded by the slot, believed only when it joins into payload_crc
        // The manifest is read from the first bytes of the payload.
        std::size_t head = static_cast<std::size_t>(std::min<std::uint64_t>(s.rec.payload_bytes, 1u << 16));
        std::vector<std::uint8_t> buf(head);
        if (reader->read(s.rec.offset, buf.data(), head)) {
            (void)tck::store::parse_shard_manifest(buf.data(), s.rec.payload_bytes == head ? head : 0);
        }
    }
    scratch.clear();
    (void)tck::persist::scavenge(*reader, scratch.path(), 2, {});
    return 0;
}
