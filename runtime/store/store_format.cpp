#include "store_format.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_set>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

#include "common/log.hpp"
#include "common/size.hpp"
#include "common/small_file.hpp"
#include "crc32c.hpp"

namespace tck::store {

namespace {

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

std::uint32_t header_crc(const Header &h) { return crc32c(&h, offsetof(Header, header_crc)); }
std::uint32_t record_crc(const SlotRecord &r) { return crc32c(&r, offsetof(SlotRecord, record_crc)); }

}  // namespace

const char *state_name(SlotState s) {
    switch (s) {
    case SlotState::empty: return "empty";
    case SlotState::writing: return "writing";
    case SlotState::complete: return "complete";
    case SlotState::committed: return "committed";
    }
    return "invalid";
}

std::size_t manifest_bytes(std::size_t nregions, bool layout) {
    return sizeof(ManifestHead) + nregions * (layout ? sizeof(LayoutEntry) : sizeof(ManifestEntry));
}

std::size_t manifest_bytes_for(const std::vector<RegionEntry> &entries) {
    bool layout = false;
    for (const auto &e : entries) layout = layout || e.layout.kind != RegionKind::opaque;
    return manifest_bytes(entries.size(), layout);
}

LayoutEntry to_layout_entry(const RegionEntry &r) {
    LayoutEntry e;
    std::memset(&e, 0, sizeof e);
    std::memcpy(e.name, r.name.data(), std::min(r.name.size(), sizeof e.name - 1));
    e.bytes = r.bytes;
    e.kind = static_cast<std::uint32_t>(r.layout.kind);
    e.global_offset = r.layout.global_offset;
    e.global_bytes = r.layout.global_bytes;
    return e;
}

RegionEntry from_layout_entry(const LayoutEntry &e) {
    return {std::string(e.name, ::strnlen(e.name, sizeof e.name)), e.bytes,
            {static_cast<RegionKind>(e.kind), e.global_offset, e.global_bytes}};
}

const char *region_kind_name(RegionKind k) {
    switch (k) {
    case RegionKind::opaque: return "opaque";
    case RegionKind::slice: return "slice";
    case RegionKind::replicated: return "replicated";
    }
    return "invalid";
}

std::string layout_problem(const RegionLayout &l, std::uint64_t bytes) {
    switch (l.kind) {
    case RegionKind::opaque:
        if (l.global_offset != 0 || l.global_bytes != 0) return "an opaque region has no global offset or size";
        return "";
    case RegionKind::slice:
        if (l.global_bytes == 0) return "a slice of a global array of 0 bytes";
        if (l.global_offset > l.global_bytes || bytes > l.global_bytes - l.global_offset) {
            return fmt::format("a slice of {} bytes at offset {} does not lie within a global array of {} bytes",
                               bytes, l.global_offset, l.global_bytes);
        }
        return "";
    case RegionKind::replicated:
        if (l.global_offset != 0 || l.global_bytes != bytes) return "a replicated region is the whole array";
        return "";
    }
    return "an unknown region kind";
}

std::uint64_t piece_count(std::uint64_t payload_bytes, std::uint32_t shift) {
    return (payload_bytes >> shift) + ((payload_bytes & ((std::uint64_t{1} << shift) - 1)) != 0 ? 1 : 0);
}

std::uint64_t piece_table_offset(std::uint64_t payload_bytes) { return align_up(payload_bytes, 8); }

std::uint64_t piece_table_end(std::uint64_t payload_bytes) {
    return piece_table_offset(payload_bytes) + 4 * piece_count(payload_bytes, kPieceShift);
}

std::uint64_t piece_table_count(const SlotRecord &rec) {
    if (rec.piece_shift < kMinPieceShift || rec.piece_shift > kMaxPieceShift || rec.payload_bytes == 0 ||
        rec.payload_bytes > rec.capacity) {
        return 0;
    }
    const std::uint64_t count = piece_count(rec.payload_bytes, rec.piece_shift);
    const std::uint64_t at = piece_table_offset(rec.payload_bytes);
    if (at > rec.capacity || count > (rec.capacity - at) / 4) return 0;
    return count;
}

bool piece_table_matches(const SlotRecord &rec, const std::vector<std::uint32_t> &crcs) {
    return !crcs.empty() && crcs.size() == piece_table_count(rec) &&
           crc32c_join_pieces(crcs.data(), crcs.size(), std::uint64_t{1} << rec.piece_shift, rec.payload_bytes) ==
               rec.payload_crc;
}

Status check_pieces(const std::uint8_t *payload, std::uint64_t bytes, const std::vector<std::uint32_t> &table,
                    std::uint32_t shift, const std::vector<std::pair<std::uint64_t, std::uint64_t>> &needs,
                    unsigned threads) {
    if (shift < kMinPieceShift || shift > kMaxPieceShift || bytes == 0 || table.size() != piece_count(bytes, shift)) {
        return error(TIERCKPT_ERR_INVALID, "a piece table of {} pieces of 2^{} bytes for {} bytes", table.size(), shift,
                     bytes);
    }
    const std::uint64_t piece = std::uint64_t{1} << shift;
    std::vector<char> wanted(table.size(), 0);
    for (const auto &[begin, end] : needs) {
        if (begin >= end || begin >= bytes) continue;
        const std::uint64_t last = (std::min(end, bytes) - 1) >> shift;
        for (std::uint64_t i = begin >> shift; i <= last; ++i) wanted[i] = 1;
    }
    for (std::size_t i = 0; i < wanted.size();) {
        if (!wanted[i]) {
            ++i;
            continue;
        }
        std::size_t j = i;
        while (j < wanted.size() && wanted[j]) ++j;
        // A run of consecutive pieces: one PieceCrc spreads it over the threads.
        const std::uint64_t begin = i * piece, end = std::min<std::uint64_t>(bytes, j * piece);
        PieceCrc run(piece);
        run.add(payload + begin, end - begin, threads);
        const std::vector<std::uint32_t> got = run.pieces();
        for (std::size_t k = 0; k < got.size(); ++k) {
            if (got[k] != table[i + k]) {
                const std::uint64_t a = (i + k) * piece;
                return error(TIERCKPT_ERR_CORRUPT, "checksum mismatch in bytes [{}, {}) of the shard", a,
                             std::min(bytes, a + piece));
            }
        }
        i = j;
    }
    return Status::ok();
}

std::uint64_t slot_bytes(std::uint64_t payload_bytes) { return align_up(piece_table_end(payload_bytes), kSlotAlign); }

Result<std::uint64_t> store_bytes_for(const std::vector<std::uint64_t> &own_payloads, unsigned own_versions,
                                      const std::vector<std::uint64_t> &replica_payloads, unsigned replica_versions) {
    std::uint64_t slots = own_payloads.size() * std::uint64_t{own_versions} +
                          replica_payloads.size() * std::uint64_t{replica_versions};
    if (slots > kMaxSlots) {
        return error(TIERCKPT_ERR_INVALID,
                     "{} slots ({} shards x {} versions of the node's own ranks, {} x {} kept for partners) are more than "
                     "a node store has ({}); run fewer ranks per node or fewer replicas",
                     slots, own_payloads.size(), own_versions, replica_payloads.size(), replica_versions, kMaxSlots);
    }
    std::uint64_t bytes = kDataOffset;
    for (std::uint64_t p : own_payloads) bytes += slot_bytes(p) * own_versions;
    for (std::uint64_t p : replica_payloads) bytes += slot_bytes(p) * replica_versions;
    return bytes;
}

Result<std::vector<RegionEntry>> parse_shard_manifest(const std::uint8_t *payload, std::uint64_t bytes) {
    auto bad = [](const std::string &why) { return error(TIERCKPT_ERR_CORRUPT, "shard manifest: {}", why); };
    if (bytes < sizeof(ManifestHead)) return bad("the shard is shorter than its manifest's header");
    ManifestHead head;
    std::memcpy(&head, payload, sizeof head);
    const bool layout = std::memcmp(head.magic, kManifestMagicLayout, sizeof head.magic) == 0;
    if (!layout && std::memcmp(head.magic, kManifestMagic, sizeof head.magic) != 0) {
        return bad("no manifest (wrong magic)");
    }
    const std::size_t entry_bytes = layout ? sizeof(LayoutEntry) : sizeof(ManifestEntry);
    // Every region needs its entry: the count is bounded by the bytes.
    if (head.nregions > (bytes - sizeof(ManifestHead)) / entry_bytes) {
        return bad("more regions than the shard can hold");
    }
    std::vector<RegionEntry> out;
    out.reserve(head.nregions);
    std::unordered_set<std::string> names;  // registration keeps them unique
    std::uint64_t total = manifest_bytes(head.nregions, layout);
    bool any_layout = false;
    const std::uint8_t *p = payload + sizeof(ManifestHead);
    for (std::uint32_t i = 0; i < head.nregions; ++i, p += entry_bytes) {
        RegionEntry r;
        if (layout) {
            LayoutEntry e;
            std::memcpy(&e, p, sizeof e);
            if (e.kind > static_cast<std::uint32_t>(RegionKind::replicated)) {
                return bad(fmt::format("region {}: unknown kind {}", i, e.kind));
            }
            r = from_layout_entry(e);
            if (std::string why = layout_problem(r.layout, r.bytes); !why.empty()) {
                return bad(fmt::format("region {}: {}", i, why));
            }
            any_layout = any_layout || r.layout.kind != RegionKind::opaque;
        } else {
            ManifestEntry e;
            std::memcpy(&e, p, sizeof e);
            r.name.assign(e.name, ::strnlen(e.name, sizeof e.name));
            r.bytes = e.bytes;
        }
        if (r.bytes > bytes - total) return bad("its regions add up to more than the shard");
        if (!names.insert(r.name).second) return bad(fmt::format("region {}: a second region named '{}'", i, r.name));
        total += r.bytes;
        out.push_back(std::move(r));
    }
    // Written only with a layout: its size must follow from its entries.
    if (layout && !any_layout) return bad("a layout manifest whose regions have no layout");
    if (total != bytes) return bad("the shard's size does not match its manifest");
    return out;
}

bool header_valid(const Header &h, std::uint64_t size) {
    return std::memcmp(h.magic, kMagic, sizeof kMagic) == 0 && h.format_version == kFormatVersion &&
           h.header_crc == header_crc(h) && h.total_bytes == size && h.max_slots == kMaxSlots &&
           h.data_offset == kDataOffset && h.data_offset <= h.next_free && h.next_free <= size;
}

bool record_valid(const SlotRecord &rec) {
    return rec.capacity > 0 && rec.record_crc == record_crc(rec) &&
           rec.state <= static_cast<std::uint32_t>(SlotState::committed) && rec.payload_bytes <= rec.capacity;
}

bool slot_in_store(const SlotRecord &rec, std::uint64_t size) {
    return rec.offset >= kDataOffset && rec.offset <= size && rec.capacity <= size - rec.offset &&
           rec.payload_bytes <= rec.capacity;
}

bool record_in_store(const SlotRecord &rec, std::uint64_t size) { return record_valid(rec) && slot_in_store(rec, size); }

std::optional<PersistSettings> parse_persist_info(const PersistInfo &pi) {
    if (std::memcmp(pi.magic, kPersistMagic, sizeof pi.magic) != 0) return std::nullopt;
    if (pi.crc != crc32c(&pi, offsetof(PersistInfo, crc))) return std::nullopt;
    std::size_t len = ::strnlen(pi.dir, sizeof pi.dir);
    if (len == sizeof pi.dir) return std::nullopt;  // not NUL-terminated
    PersistSettings p;
    p.dir.assign(pi.dir, len);
    p.keep = pi.keep;
    p.every = pi.every;
    return p;
}

Result<StoreFile> StoreFile::open(const std::string &path, std::uint64_t create_bytes, bool prefault,
                                  bool read_only) {
    StoreFile f;
    f.path_ = path;
    int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
    f.fd_.reset(::open(path.c_str(), flags));
    if (!f.fd_ && errno == ENOENT && create_bytes > 0 && !read_only) {
        f.fd_.reset(::open(path.c_str(), flags | O_CREAT | O_EXCL, 0600));
        if (f.fd_) {
            int rc = ::posix_fallocate(f.fd_.get(), 0, static_cast<off_t>(create_bytes));
            if (rc != 0) {
                ::unlink(path.c_str());
                return error(TIERCKPT_ERR_NO_MEMORY, "cannot allocate {} for the store {}: {}", format_size(create_bytes),
                             path, std::strerror(rc));
            }
        }
    }
    if (!f.fd_) {
        int err = errno;
        if (err == ENOENT) {
            return error(TIERCKPT_ERR_NOT_FOUND,
                         "no node store at {}: run the job with srun --ckpt-mem=SIZE, or give a store path and size",
                         path);
        }
        return error(TIERCKPT_ERR_IO, "cannot open the node store {}: {}", path, std::strerror(err));
    }
    struct stat st {};
    if (::fstat(f.fd_.get(), &st) != 0) return error(TIERCKPT_ERR_IO, "cannot stat {}: {}", path, std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return error(TIERCKPT_ERR_INVALID, "{} is not a regular file", path);
    f.size_ = static_cast<std::uint64_t>(st.st_size);
    if (f.size_ < kMinStoreBytes) {
        return error(TIERCKPT_ERR_INVALID, "the node store {} is {}; it must hold at least {}", path,
                     format_size(f.size_), format_size(kMinStoreBytes));
    }
    int prot = read_only ? PROT_READ : PROT_READ | PROT_WRITE;
    int mflags = MAP_SHARED | (prefault ? MAP_POPULATE : 0);
    void *p = ::mmap(nullptr, f.size_, prot, mflags, f.fd_.get(), 0);
    if (p == MAP_FAILED) return error(TIERCKPT_ERR_IO, "cannot map {}: {}", path, std::strerror(errno));
    f.base_ = static_cast<std::uint8_t *>(p);
    return f;
}

StoreFile::StoreFile(StoreFile &&o) noexcept
    : path_(std::move(o.path_)), fd_(std::move(o.fd_)), base_(std::exchange(o.base_, nullptr)),
      size_(std::exchange(o.size_, 0)), mu_(std::move(o.mu_)) {}

StoreFile &StoreFile::operator=(StoreFile &&o) noexcept {
    if (this != &o) {
        if (base_) ::munmap(base_, size_);
        path_ = std::move(o.path_);
        fd_ = std::move(o.fd_);
        base_ = std::exchange(o.base_, nullptr);
        size_ = std::exchange(o.size_, 0);
        mu_ = std::move(o.mu_);
    }
    return *this;
}

StoreFile::~StoreFile() {
    if (base_) ::munmap(base_, size_);
}

StoreFile::Lock::Lock(int fd, std::mutex &mu) : fd_(fd), thread_lock_(mu) {
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
}
StoreFile::Lock::~Lock() { ::flock(fd_, LOCK_UN); }

Status StoreFile::format_if_needed(std::uint64_t job_id) {
    auto guard = lock();
    if (header_valid()) return Status::ok();
    std::memset(base_, 0, kHeaderBytes + kMaxSlots * kRecordBytes);
    Header &h = mutable_header();
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.format_version = kFormatVersion;
    h.max_slots = kMaxSlots;
    h.total_bytes = size_;
    h.data_offset = kDataOffset;
    h.next_free = h.data_offset;
    h.committed_version = 0;
    h.job_id = job_id;
    h.header_crc = header_crc(h);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return Status::ok();
}

SlotRecord *StoreFile::record_ptr(std::uint32_t slot) const {
    return reinterpret_cast<SlotRecord *>(base_ + kHeaderBytes + static_cast<std::size_t>(slot) * kRecordBytes);
}

SlotRecord StoreFile::read_record(std::uint32_t slot) const {
    SlotRecord r;
    std::atomic_thread_fence(std::memory_order_acquire);
    std::memcpy(&r, record_ptr(slot), sizeof r);
    return r;
}

void StoreFile::write_record(std::uint32_t slot, SlotRecord rec) {
    SlotRecord old = read_record(slot);
    rec.seq = old.seq + 1;
    rec.record_crc = record_crc(rec);
    std::atomic_thread_fence(std::memory_order_release);
    std::memcpy(record_ptr(slot), &rec, sizeof rec);
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

Result<std::uint32_t> StoreFile::allocate(std::uint32_t rank, std::uint32_t world, std::uint64_t version,
                                          std::uint64_t need, std::uint64_t protect_from, std::uint32_t nregions,
                                          std::uint32_t kind, std::int64_t writer_in, std::int64_t keep_slot,
                                          std::uint64_t pinned) {
    const std::uint32_t writer = writer_in < 0 ? rank : static_cast<std::uint32_t>(writer_in);
    Header &h = mutable_header();
    // Reusable: an invalid or unfinished record, or a shard older than what
    // must be kept. Prefer this rank's own old slot, then the tightest fit.
    int best = -1;
    std::uint64_t best_cap = 0;
    bool best_own = false;
    std::uint32_t used = 0;
    for (std::uint32_t i = 0; i < kMaxSlots; ++i) {
        SlotRecord r = read_record(i);
        if (r.capacity == 0 && r.offset == 0) continue;  // never handed out
        used = i + 1;
        // A torn record's offset and capacity cannot be trusted: its slot
        // is left alone (lost until the store is freed).
        if (!record_in_store(r, size_)) continue;
        if (static_cast<std::int64_t>(i) == keep_slot) continue;
        // Another rank's slot may hold its save in flight: only an old
        // version is fair game. This rank has no save in flight here, so
        // its own unfinished slot (a save that died) is too.
        // The same rank may be filling a replica in its worker thread while
        // its application thread saves: only a slot of the same kind (and,
        // for replicas, being refilled by the same writer) counts as its own.
        bool own_stale = r.writer == writer && r.kind == kind && (kind != kOwnShard || r.rank == rank) &&
                         r.state != static_cast<std::uint32_t>(SlotState::complete) &&
                         r.state != static_cast<std::uint32_t>(SlotState::committed);
        // Another world size's shard is kept as this one's are: an elastic
        // restore may read it, and a restored version's shards are of the
        // world that saved it.
        bool reusable = r.state == static_cast<std::uint32_t>(SlotState::empty) ||
                        (r.version < protect_from && r.version != pinned) || own_stale;
        if (!reusable || r.capacity < need) continue;
        bool own = r.rank == rank && r.kind == kind;
        if (best < 0 || (own && !best_own) || (own == best_own && r.capacity < best_cap)) {
            best = static_cast<int>(i);
            best_cap = r.capacity;
            best_own = own;
        }
    }
    SlotRecord rec{};
    std::uint32_t slot;
    if (best >= 0) {
        slot = static_cast<std::uint32_t>(best);
        SlotRecord old = read_record(slot);
        rec.offset = old.offset;
        rec.capacity = old.capacity;
    } else {
        std::uint64_t cap = slot_bytes(need);  // room for the piece table too
        if (used >= kMaxSlots || h.next_free > size_ || cap > size_ - h.next_free) {
            std::uint64_t free_bytes = size_ - h.next_free;
            return error(TIERCKPT_ERR_NO_MEMORY,
                         "the node store {} ({}) has no room for a {} shard of rank {} ({} unused); a store holds two "
                         "versions of its node's shards and of the copies it keeps for partners (three of its own "
                         "for saves never to wait): ask for more with --ckpt-mem (tierckpt plan --from-store sizes it)",
                         path_, format_size(size_), format_size(need), rank, format_size(free_bytes));
        }
        slot = used;
        rec.offset = h.next_free;
        rec.capacity = cap;
        h.next_free += cap;
        h.header_crc = header_crc(h);
    }
    rec.state = static_cast<std::uint32_t>(SlotState::writing);
    rec.rank = rank;
    rec.world = world;
    rec.nregions = nregions;
    rec.version = version;
    rec.payload_bytes = need;
    rec.job_id = h.job_id;
    rec.kind = kind;
    rec.writer = writer;
    write_record(slot, rec);
    log::debug("allocate: slot {} [{}, +{}) for rank {} version {} kind {} writer {}", slot, rec.offset, rec.capacity,
               rank, version, kind, writer);
    return slot;
}

std::uint32_t StoreFile::write_piece_table(const SlotRecord &rec, const std::vector<std::uint32_t> &crcs) {
    SlotRecord shaped = rec;
    shaped.piece_shift = kPieceShift;
    if (!slot_in_store(rec, size_) || crcs.size() != piece_table_count(shaped)) return 0;
    std::uint8_t *at = base_ + rec.offset + piece_table_offset(rec.payload_bytes);
    std::memcpy(at, crcs.data(), crcs.size() * sizeof(std::uint32_t));  // little-endian: x86-64, aarch64
    return kPieceShift;
}

std::optional<std::vector<std::uint32_t>> StoreFile::read_piece_table(const SlotRecord &rec) const {
    const std::uint64_t count = piece_table_count(rec);
    if (count == 0 || !slot_in_store(rec, size_)) return std::nullopt;
    std::vector<std::uint32_t> crcs(static_cast<std::size_t>(count));
    std::memcpy(crcs.data(), base_ + rec.offset + piece_table_offset(rec.payload_bytes), count * sizeof(std::uint32_t));
    if (!piece_table_matches(rec, crcs)) return std::nullopt;
    return crcs;
}

unsigned StoreFile::free_version(std::uint64_t version, std::uint32_t writer, std::uint32_t kind) {
    unsigned freed = 0;
    for (std::uint32_t i = 0; i < kMaxSlots; ++i) {
        SlotRecord r = read_record(i);
        if (r.capacity == 0 && r.offset == 0) continue;
        if (!record_in_store(r, size_)) continue;
        if (r.version != version || r.writer != writer || r.kind != kind ||
            r.state != static_cast<std::uint32_t>(SlotState::complete)) {
            continue;
        }
        r.state = static_cast<std::uint32_t>(SlotState::empty);
        write_record(i, r);
        ++freed;
    }
    return freed;
}

std::vector<ShardInfo> StoreFile::records() const {
    std::vector<ShardInfo> out;
    for (std::uint32_t i = 0; i < kMaxSlots; ++i) {
        SlotRecord r = read_record(i);
        if (r.capacity == 0 && r.offset == 0) continue;
        if (!record_in_store(r, size_)) continue;
        out.push_back({i, r});
    }
    return out;
}

std::vector<ShardInfo> StoreFile::shards() const {
    std::vector<ShardInfo> out;
    for (const auto &s : records()) {
        if (s.rec.state == static_cast<std::uint32_t>(SlotState::complete) ||
            s.rec.state == static_cast<std::uint32_t>(SlotState::committed)) {
            out.push_back(s);
        }
    }
    return out;
}

void StoreFile::set_committed_hint(std::uint64_t version) {
    auto guard = lock();
    Header &h = mutable_header();
    if (version > h.committed_version) {
        h.committed_version = version;
        h.header_crc = header_crc(h);
    }
}

Status StoreFile::join_session(std::uint64_t id, const std::string &who, int wait_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    for (;;) {
        std::string holder;
        {
            auto guard = lock();
            struct flock probe {};
            probe.l_type = F_WRLCK;
            probe.l_whence = SEEK_SET;
            probe.l_start = kSessionLockByte;
            probe.l_len = 1;
            if (::fcntl(fd_.get(), F_OFD_GETLK, &probe) != 0) {
                return error(TIERCKPT_ERR_IO, "cannot test the run lock of {}: {}", path_, std::strerror(errno));
            }
            SessionInfo si;
            std::atomic_thread_fence(std::memory_order_acquire);
            std::memcpy(&si, base_ + kSessionInfoOffset, sizeof si);
            bool recorded = std::memcmp(si.magic, kSessionMagic, sizeof si.magic) == 0 &&
                            si.crc == crc32c(&si, offsetof(SessionInfo, crc));
            bool live = probe.l_type != F_UNLCK;
            if (live && recorded && si.id != id) {
                holder.assign(si.who, ::strnlen(si.who, sizeof si.who));
            } else if (live && !recorded) {
                holder = "a run whose record is unreadable";
            } else {
                if (!live || !recorded || si.id != id) {
                    SessionInfo mine{};
                    std::memcpy(mine.magic, kSessionMagic, sizeof mine.magic);
                    mine.id = id;
                    std::memcpy(mine.who, who.data(), std::min(who.size(), sizeof mine.who - 1));
                    mine.crc = crc32c(&mine, offsetof(SessionInfo, crc));
                    std::memcpy(base_ + kSessionInfoOffset, &mine, sizeof mine);
                    std::atomic_thread_fence(std::memory_order_seq_cst);
                }
                struct flock hold = probe;
                hold.l_type = F_RDLCK;
                hold.l_pid = 0;
                if (::fcntl(fd_.get(), F_OFD_SETLK, &hold) != 0) {
                    return error(TIERCKPT_ERR_IO, "cannot take the run lock of {}: {}", path_, std::strerror(errno));
                }
                return Status::ok();
            }
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return error(TIERCKPT_ERR_INVALID,
                         "another run is checkpointing into this node's store {}: {}. Two job steps writing the same "
                         "ranks' checkpoints at once would overwrite each other: run checkpointing steps one at a "
                         "time, or on different nodes",
                         path_, holder);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

std::optional<StoreFile::Persist> StoreFile::persist_info() const {
    PersistInfo pi;
    std::atomic_thread_fence(std::memory_order_acquire);
    std::memcpy(&pi, base_ + kPersistInfoOffset, sizeof pi);
    return parse_persist_info(pi);
}

Status StoreFile::set_persist_info(const Persist &p) {
    if (p.dir.size() >= kPersistDirBytes) {
        return error(TIERCKPT_ERR_INVALID, "the persistent directory's path is {} bytes; the store records at most {}",
                     p.dir.size(), kPersistDirBytes - 1);
    }
    PersistInfo pi{};
    if (!p.dir.empty()) {
        std::memcpy(pi.magic, kPersistMagic, sizeof pi.magic);
        pi.keep = p.keep;
        pi.every = p.every;
        std::memcpy(pi.dir, p.dir.data(), p.dir.size());
        pi.crc = crc32c(&pi, offsetof(PersistInfo, crc));
    }
    auto guard = lock();
    std::memcpy(base_ + kPersistInfoOffset, &pi, sizeof pi);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return Status::ok();
}

Result<StoreReader> StoreReader::open(const std::string &path) {
    auto fd = open_regular_at(AT_FDCWD, path, path, O_RDONLY);
    if (!fd) {
        if (fd.status().code() == TIERCKPT_ERR_NOT_FOUND) {
            return error(TIERCKPT_ERR_NOT_FOUND, "no node store at {}", path);
        }
        return fd.status();
    }
    return from_fd(std::move(*fd), path);
}

Result<StoreReader> StoreReader::from_fd(UniqueFd fd, const std::string &path) {
    StoreReader r;
    r.path_ = path;
    r.fd_ = std::move(fd);
    struct stat st {};
    if (::fstat(r.fd_.get(), &st) != 0) return error(TIERCKPT_ERR_IO, "cannot stat {}: {}", path, std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return error(TIERCKPT_ERR_CORRUPT, "{} is not a regular file", path);
    r.size_ = static_cast<std::uint64_t>(st.st_size);
    if (r.size_ < kMinStoreBytes) {
        return error(TIERCKPT_ERR_INVALID, "{} is {}; a node store holds at least {}", path, format_size(r.size_),
                     format_size(kMinStoreBytes));
    }
    // The header page and the slot directory, once.
    std::vector<std::uint8_t> head(kHeaderBytes + kMaxSlots * kRecordBytes);
    Status st_read = r.read(0, head.data(), head.size());
    if (!st_read) return st_read;
    std::memcpy(&r.header_, head.data(), sizeof r.header_);
    std::memcpy(&r.persist_, head.data() + kPersistInfoOffset, sizeof r.persist_);
    r.valid_ = store::header_valid(r.header_, r.size_);
    if (r.valid_) {
        for (std::uint32_t i = 0; i < kMaxSlots; ++i) {
            SlotRecord rec;
            std::memcpy(&rec, head.data() + kHeaderBytes + static_cast<std::size_t>(i) * kRecordBytes, sizeof rec);
            if (rec.capacity == 0 && rec.offset == 0) continue;  // never handed out
            if (record_in_store(rec, r.size_)) r.records_.push_back({i, rec});
        }
    }
    return r;
}

std::vector<ShardInfo> StoreReader::shards() const {
    std::vector<ShardInfo> out;
    for (const auto &s : records_) {
        if (s.rec.state == static_cast<std::uint32_t>(SlotState::complete) ||
            s.rec.state == static_cast<std::uint32_t>(SlotState::committed)) {
            out.push_back(s);
        }
    }
    return out;
}

Result<SlotRecord> StoreReader::reread_record(std::uint32_t slot) const {
    if (slot >= kMaxSlots) return error(TIERCKPT_ERR_INVALID, "slot {} is beyond the directory", slot);
    SlotRecord rec;
    Status st = read(kHeaderBytes + static_cast<std::uint64_t>(slot) * kRecordBytes, &rec, sizeof rec);
    if (!st) return st;
    return rec;
}

std::optional<PersistSettings> StoreReader::persist_info() const { return parse_persist_info(persist_); }

Status StoreReader::read(std::uint64_t offset, void *dst, std::size_t len) const {
    return read_exact_at(fd_.get(), dst, len, offset, path_);
}

Result<std::uint32_t> StoreReader::crc(std::uint64_t offset, std::uint64_t len) const {
    return crc32c_file(fd_.get(), offset, len, kReadPiece, path_);
}

Result<std::optional<std::vector<std::uint32_t>>> StoreReader::piece_table(const SlotRecord &rec) const {
    using Table = std::optional<std::vector<std::uint32_t>>;
    const std::uint64_t count = piece_table_count(rec);
    // Bounded by the slot's capacity, which lies within the file: pieces of
    // 4 KiB at least, so a record claims no more than 1/1024 of the store.
    if (count == 0 || !slot_in_store(rec, size_)) return Table();
    std::vector<std::uint32_t> crcs(static_cast<std::size_t>(count));
    Status st = read(rec.offset + piece_table_offset(rec.payload_bytes), crcs.data(), crcs.size() * sizeof(std::uint32_t));
    if (!st) return st;
    if (!piece_table_matches(rec, crcs)) return Table();
    return Table(std::move(crcs));
}

}  // namespace tck::store
