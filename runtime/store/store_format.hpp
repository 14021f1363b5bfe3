// The node store's layout: the one place it is defined (tierckpt-store(5)
// describes it for people).
//
//   offset 0        Header (4 KiB): magic, format version, sizes, hints;
//                   at kPersistInfoOffset the job's persistent tier (PersistInfo)
//   offset 4096     slot directory: kMaxSlots SlotRecords of 128 bytes
//   data_offset     slot data, each slot kSlotAlign-aligned
//
// A slot holds one shard: the state of one rank at one version, as a
// manifest (the regions' names, sizes and layouts) followed by the
// regions' bytes.
// Its SlotRecord says whose shard it is, which version, its size, its
// CRC32C and its state; the record carries its own CRC, so a record torn
// by a process killed while writing it reads as invalid, and a shard whose
// save was cut short stays in state `writing`: never restored.
//
// A slot is written only by the rank that owns it; slots are handed out
// under an flock on the store file, so the ranks of a node (and the
// `tierckpt` command) may share the store. The store outlives the step that
// wrote it: a new step re-attaches and reads the records.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "common/unique_fd.hpp"

namespace tck::store {

inline constexpr char kMagic[8] = {'T', 'C', 'K', 'S', 'T', 'O', 'R', '1'};
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::size_t kHeaderBytes = 4096;
inline constexpr std::uint32_t kMaxSlots = 256;
inline constexpr std::size_t kRecordBytes = 128;
inline constexpr std::size_t kSlotAlign = 4096;
inline constexpr std::size_t kRegionNameBytes = 56;
// Where slot data begins: after the header and the slot directory.
inline constexpr std::uint64_t kDataOffset =
    (kHeaderBytes + kMaxSlots * kRecordBytes + kSlotAlign - 1) / kSlotAlign * kSlotAlign;
// The smallest store: room for one slot.
inline constexpr std::uint64_t kMinStoreBytes = kDataOffset + kSlotAlign;

inline constexpr std::uint64_t kNoVersion = ~std::uint64_t{0};
inline constexpr std::uint32_t kOwnShard = 0;  // SlotRecord::kind
inline constexpr std::uint32_t kReplica = 1;   // a copy of another node's shard

enum class SlotState : std::uint32_t {
    empty = 0,
    writing = 1,    // a save is copying into it (or died doing so)
    complete = 2,   // payload and checksum written
    committed = 3,  // and every rank's shard of this version was complete
};
const char *state_name(SlotState s);

struct Header {
    char magic[8];
    std::uint32_t format_version;
    std::uint32_t max_slots;
    std::uint64_t total_bytes;
    std::uint64_t data_offset;        // first byte of slot data
    std::uint64_t next_free;          // where the next new slot goes
    std::uint64_t committed_version;  // newest version seen committed here (a hint)
    std::uint64_t job_id;
    std::uint32_t header_crc;         // CRC32C of the bytes before it
    std::uint32_t pad;
};
static_assert(sizeof(Header) <= kHeaderBytes);

struct SlotRecord {
    std::uint64_t offset;         // of the slot's data, from the start of the store
    std::uint64_t capacity;       // bytes reserved for it
    std::uint32_t state;          // SlotState
    std::uint32_t rank;           // whose shard
    std::uint32_t world;          // size of the job that wrote it
    std::uint32_t nregions;
    std::uint64_t version;
    std::uint64_t payload_bytes;  // manifest + regions
    std::uint32_t payload_crc;    // CRC32C of the payload
    std::uint32_t kind;           // kOwnShard or kReplica
    std::uint64_t seq;            // bumped on every write of the record
    std::uint64_t job_id;
    std::uint32_t writer;         // the rank that writes this slot (the owner, or the replica's receiver)
    std::uint32_t piece_shift;    // the piece table's pieces are 2^piece_shift bytes; 0: no table
    std::uint8_t reserved[kRecordBytes - 84];
    std::uint32_t record_crc;     // CRC32C of the bytes before it
};
static_assert(sizeof(SlotRecord) == kRecordBytes);

// Per-piece checksums. Besides payload_crc, a shard's payload is
// checksummed in pieces of 2^piece_shift bytes (the last may be short);
// their CRC32Cs, one little-endian uint32 each, follow the payload in its
// slot at piece_table_offset(payload_bytes). A reader that needs some
// ranges of a shard verifies only the pieces they touch, and a damaged
// shard says which bytes are damaged. The table is believed only when it
// lies within the slot and its CRCs join into payload_crc (read_piece_table);
// piece_shift 0 (older stores, a copy received without one): verify the
// whole payload.
inline constexpr std::uint32_t kPieceShift = 22;  // 4 MiB pieces
inline constexpr std::uint32_t kMinPieceShift = 12, kMaxPieceShift = 30;
// Pieces of a payload of `payload_bytes` (at least one byte) at `shift`.
std::uint64_t piece_count(std::uint64_t payload_bytes, std::uint32_t shift);
// From the start of the slot: the payload, rounded up to 8 bytes.
std::uint64_t piece_table_offset(std::uint64_t payload_bytes);
// Where the table ends (from the start of the slot) for the default kPieceShift.
std::uint64_t piece_table_end(std::uint64_t payload_bytes);
// The piece count of a record's table when its shape fits its slot (a
// shift in range, a payload, the table within the capacity); 0 otherwise.
std::uint64_t piece_table_count(const SlotRecord &rec);
// Whether a table read for rec joins into its payload_crc.
bool piece_table_matches(const SlotRecord &rec, const std::vector<std::uint32_t> &crcs);
// Checks the pieces of a payload of `bytes` bytes that the [begin, end)
// ranges `needs` touch (ranges beyond the payload are cut at its end)
// against `table` (pieces of 2^shift bytes), runs of consecutive pieces
// spread over up to `threads` threads. TIERCKPT_ERR_CORRUPT naming the
// first damaged piece's bytes; TIERCKPT_ERR_INVALID for a table that is not
// the payload's (a count or shift that does not fit it).
Status check_pieces(const std::uint8_t *payload, std::uint64_t bytes, const std::vector<std::uint32_t> &table,
                    std::uint32_t shift, const std::vector<std::pair<std::uint64_t, std::uint64_t>> &needs,
                    unsigned threads);

// Where the job flushes its checkpoints (written by the runtime when it
// opens the store with a persistent directory), so that a flush at the end
// of the job (the epilog, `tierckpt flush`) finds it without the job's
// environment. All zero: none. Not covered by the header CRC: it has its
// own. Older stores have zeros here.
inline constexpr std::size_t kPersistInfoOffset = 2048;
inline constexpr std::size_t kPersistDirBytes = 1536;
inline constexpr char kPersistMagic[8] = {'T', 'C', 'K', 'P', 'E', 'R', 'S', '1'};
struct PersistInfo {
    char magic[8];
    std::uint32_t keep;   // persistent versions to keep
    std::uint32_t every;  // flush every Nth committed version
    char dir[kPersistDirBytes];  // NUL-terminated absolute path
    std::uint32_t crc;    // CRC32C of the bytes before it
    std::uint32_t pad;
};
static_assert(sizeof(Header) <= kPersistInfoOffset);
static_assert(kPersistInfoOffset + sizeof(PersistInfo) <= kHeaderBytes);

// Which run (the ranks of one job step) writes into the store now. Two
// runs that checkpoint into one node store at once (`srun --overlap` steps
// of one job on the same nodes) would write the same ranks' shards at the
// same versions over each other, so the second is refused (StoreFile::
// join_session). Liveness is not written but held: every rank of the run
// holds a shared OFD lock on the byte at kSessionLockByte while its store
// is open, which the kernel drops when the process ends, however it ends.
// Not covered by the header CRC: it has its own.
inline constexpr std::size_t kSessionInfoOffset = 1024;
inline constexpr std::size_t kSessionWhoBytes = 232;
inline constexpr char kSessionMagic[8] = {'T', 'C', 'K', 'S', 'E', 'S', 'S', '1'};
inline constexpr off_t kSessionLockByte = 1024;
struct SessionInfo {
    char magic[8];
    std::uint64_t id;              // the same on every rank of a run
    char who[kSessionWhoBytes];    // for the refusal message: job, step, host, pid
    std::uint32_t crc;             // CRC32C of the bytes before it
    std::uint32_t pad;
};
static_assert(sizeof(Header) <= kSessionInfoOffset);
static_assert(kSessionInfoOffset + sizeof(SessionInfo) <= kPersistInfoOffset);

// The payload starts with this, then nregions ManifestEntry (magic
// "TCKSHRD1") or nregions LayoutEntry ("TCKSHRD2"), then the regions'
// bytes back to back in the same order. The second form is written when at
// least one region has a layout (a slice of a global array, or replicated);
// shards of opaque regions alone keep the first, so their sizes and older
// readers do not change.
struct ManifestHead {
    char magic[8];
    std::uint32_t nregions;
    std::uint32_t pad;
};
struct ManifestEntry {
    char name[kRegionNameBytes];
    std::uint64_t bytes;
};
inline constexpr char kManifestMagic[8] = {'T', 'C', 'K', 'S', 'H', 'R', 'D', '1'};

// What a region is to the job (tierckpt(3)): opaque (this rank's own bytes,
// restored only onto the same rank), a slice of a global array named like
// the region (this rank holds bytes [offset, offset + bytes) of its
// global_bytes), or replicated (the same bytes on every rank).
enum class RegionKind : std::uint32_t { opaque = 0, slice = 1, replicated = 2 };
const char *region_kind_name(RegionKind k);

struct RegionLayout {
    RegionKind kind = RegionKind::opaque;
    std::uint64_t global_offset = 0;  // slice: where this rank's bytes start in the global array
    std::uint64_t global_bytes = 0;   // slice: the global array's size; replicated: the region's; opaque: 0
    bool operator==(const RegionLayout &o) const {
        return kind == o.kind && global_offset == o.global_offset && global_bytes == o.global_bytes;
    }
    bool operator!=(const RegionLayout &o) const { return !(*this == o); }
};
struct LayoutEntry {
    char name[kRegionNameBytes];
    std::uint64_t bytes;
    std::uint32_t kind;  // RegionKind
    std::uint32_t pad;
    std::uint64_t global_offset;
    std::uint64_t global_bytes;
};
inline constexpr char kManifestMagicLayout[8] = {'T', 'C', 'K', 'S', 'H', 'R', 'D', '2'};

// The manifest of nregions regions; layout: in the second form.
std::size_t manifest_bytes(std::size_t nregions, bool layout = false);

// Whether a region of `bytes` bytes may have layout l: a slice lies within
// a global array of at least one byte (overflow-safe); a replicated
// region's global size is its own, at offset 0; an opaque one has neither.
// The reason otherwise ("" when it may).
std::string layout_problem(const RegionLayout &l, std::uint64_t bytes);

// Bytes a slot takes for a shard whose payload (manifest + regions) is
// `payload_bytes`: the payload and its piece table, rounded up to
// kSlotAlign, as StoreFile::allocate hands new slots out.
std::uint64_t slot_bytes(std::uint64_t payload_bytes);

// The smallest store that holds `own_versions` slots for each of the
// node's own shards (payload sizes in `own_payloads`) and
// `replica_versions` for each shard it keeps for partners: the header and
// slot directory, then every slot laid out as allocate() lays them out.
// TIERCKPT_ERR_INVALID when that is more than kMaxSlots slots. What
// `tierckpt plan` prints as --ckpt-mem, tested against allocate().
Result<std::uint64_t> store_bytes_for(const std::vector<std::uint64_t> &own_payloads, unsigned own_versions,
                                      const std::vector<std::uint64_t> &replica_payloads, unsigned replica_versions);

// One region as a shard's manifest describes it.
struct RegionEntry {
    std::string name;
    std::uint64_t bytes = 0;
    RegionLayout layout;
};
// A region as the manifest's second form writes it (the name cut at
// kRegionNameBytes - 1 bytes), and back, unchecked (parse_shard_manifest
// and layout_problem check what comes from outside).
LayoutEntry to_layout_entry(const RegionEntry &r);
RegionEntry from_layout_entry(const LayoutEntry &e);
// The size of the manifest that describes these entries (the second form
// when one has a layout): where the first region's bytes start.
std::size_t manifest_bytes_for(const std::vector<RegionEntry> &entries);
// Reads the manifest at the start of a shard's payload of `bytes` bytes
// (the regions' names, sizes and layouts), checked before anything is
// used: the magic, a region count the payload can hold, names that are
// unique, every layout possible (layout_problem), a second-form manifest
// with at least one layout, and manifest plus regions adding up to exactly
// `bytes` (overflow-safe). TIERCKPT_ERR_CORRUPT with
// the reason otherwise. The payload may come from anyone (a peer, a
// persistent file, a store its user rewrote).
Result<std::vector<RegionEntry>> parse_shard_manifest(const std::uint8_t *payload, std::uint64_t bytes);

// Checks of what a store holds, for a store file of `size` bytes. Its
// user (or a process killed mid-write) may have written anything there:
// every check is overflow-safe, and a record is used only when it passes.
bool header_valid(const Header &h, std::uint64_t size);
// The record's own CRC, a known state, payload within capacity.
bool record_valid(const SlotRecord &rec);
// The slot [offset, offset + capacity) lies within the data area of a
// store of `size` bytes and holds the payload (the record's CRC unchecked:
// for a record being written).
bool slot_in_store(const SlotRecord &rec, std::uint64_t size);
// record_valid and slot_in_store.
bool record_in_store(const SlotRecord &rec, std::uint64_t size);

// The job's persistent tier as recorded in the header page (nullopt: none,
// or not valid).
struct PersistSettings {
    std::string dir;
    std::uint32_t keep = 0;
    std::uint32_t every = 0;
};
std::optional<PersistSettings> parse_persist_info(const PersistInfo &pi);

// A valid record of a shard that may be restored (complete or committed).
struct ShardInfo {
    std::uint32_t slot = 0;
    SlotRecord rec{};
};

// A mapped node store file.
class StoreFile {
public:
    // Maps the store at `path`. With create_bytes > 0 a missing file is
    // created with that size (mode 0600); otherwise it must exist (the
    // SPANK plugin made it). read_only maps it for inspection.
    static Result<StoreFile> open(const std::string &path, std::uint64_t create_bytes, bool prefault,
                                  bool read_only = false);
    StoreFile(StoreFile &&) noexcept;
    StoreFile &operator=(StoreFile &&) noexcept;
    StoreFile(const StoreFile &) = delete;
    StoreFile &operator=(const StoreFile &) = delete;
    ~StoreFile();

    const std::string &path() const { return path_; }
    std::uint64_t size() const { return size_; }
    std::uint8_t *base() const { return base_; }

    // Writes a fresh header when there is none (or an unknown format);
    // keeps everything when the header is valid. Takes the lock itself.
    Status format_if_needed(std::uint64_t job_id);
    bool header_valid() const { return store::header_valid(header(), size_); }
    const Header &header() const { return *reinterpret_cast<const Header *>(base_); }

    // Exclusive lock for directory changes: a mutex for the threads of
    // this process (flock does not separate them: they share the open file
    // description), then flock for the other processes.
    class Lock {
    public:
        Lock(int fd, std::mutex &mu);
        ~Lock();
        Lock(const Lock &) = delete;
        Lock &operator=(const Lock &) = delete;

    private:
        int fd_;
        std::unique_lock<std::mutex> thread_lock_;
    };
    Lock lock() const { return Lock(fd_.get(), *mu_); }

    SlotRecord read_record(std::uint32_t slot) const;
    void write_record(std::uint32_t slot, SlotRecord rec);  // sets seq and record_crc
    static bool record_valid(const SlotRecord &rec) { return store::record_valid(rec); }

    // Picks a slot for `rank`'s shard (or, kind kReplica, a copy of it
    // that rank `writer` receives) of `need` bytes and marks it `writing`
    // at `version`. Never takes a slot holding a shard at `protect_from`
    // or newer (the newest committed version and saves in flight), except
    // the writer's own unfinished one, nor one at `pinned` (the older
    // version a flush to the persistent tier reads; kNoVersion: none). Call
    // with the lock held. writer -1: the rank itself. keep_slot: a slot
    // never to take, even unfinished (the rank's save in flight, which the
    // worker may still be checksumming); -1: none.
    Result<std::uint32_t> allocate(std::uint32_t rank, std::uint32_t world, std::uint64_t version,
                                   std::uint64_t need, std::uint64_t protect_from, std::uint32_t nregions,
                                   std::uint32_t kind = kOwnShard, std::int64_t writer = -1,
                                   std::int64_t keep_slot = -1, std::uint64_t pinned = kNoVersion);
    // Marks `writer`'s complete slots of `kind` at `version` empty (a
    // version that did not commit: never restored, its room reused at
    // once). Slots still being written are left to their writer. Call
    // with the lock held. Returns how many were freed.
    unsigned free_version(std::uint64_t version, std::uint32_t writer, std::uint32_t kind);

    // Every valid complete or committed shard in the store.
    std::vector<ShardInfo> shards() const;
    // Every valid record (any state), for listings.
    std::vector<ShardInfo> records() const;

    void set_committed_hint(std::uint64_t version);

    // Writes the piece table of `crcs` (pieces of 2^kPieceShift bytes of
    // the slot's payload) after the payload and returns the piece_shift to
    // record with it, or 0 (no table) when the count is not the payload's
    // or the table does not fit the slot (a slot handed out for a smaller
    // table by an older version). The writer's own slot, before its record
    // says complete.
    std::uint32_t write_piece_table(const SlotRecord &rec, const std::vector<std::uint32_t> &crcs);
    // The piece table of a valid record's slot: nullopt when it has none,
    // or when it is not believable (a shift out of range, a table beyond
    // the slot or the store, CRCs that do not join into payload_crc).
    std::optional<std::vector<std::uint32_t>> read_piece_table(const SlotRecord &rec) const;

    // Joins run `id` as one of its ranks (see SessionInfo): when no run
    // holds the store, or run `id` does, this rank holds it too from now
    // until the store is closed. When another run holds it, waits up to
    // wait_ms for it to end (a relaunched step may start while the ranks of
    // the step it replaces are still exiting), then refuses with a message
    // naming that run (`who` describes this one for the next). Takes the
    // lock itself.
    Status join_session(std::uint64_t id, const std::string &who, int wait_ms);

    // The job's persistent tier, as the runtime recorded it (nullopt: none
    // or unreadable). set_persist_info takes the lock itself.
    using Persist = PersistSettings;
    std::optional<Persist> persist_info() const;
    Status set_persist_info(const Persist &p);

private:
    StoreFile() = default;
    Header &mutable_header() { return *reinterpret_cast<Header *>(base_); }
    SlotRecord *record_ptr(std::uint32_t slot) const;

    std::string path_;
    UniqueFd fd_;
    std::uint8_t *base_ = nullptr;
    std::uint64_t size_ = 0;
    std::unique_ptr<std::mutex> mu_ = std::make_unique<std::mutex>();
};

// A node store read with pread, never mapped: for privileged code and the
// `tierckpt` command, which read stores that their users may truncate or
// rewrite at any moment. A store cut short gives an error, never SIGBUS;
// every offset is checked before use; checksums are computed in pieces, so
// nothing is allocated in proportion to what a record claims. The header
// and slot directory are read once, at open (a snapshot); reread_record()
// reads one record again.
class StoreReader {
public:
    // Opens `path` read-only: its last component not a symlink, without
    // blocking (O_NONBLOCK: a FIFO in its place is refused, not waited
    // on), a regular file.
    static Result<StoreReader> open(const std::string &path);
    // From a descriptor of a regular file opened already (e.g. by root,
    // before dropping to the file's owner); `path` names it in messages.
    static Result<StoreReader> from_fd(UniqueFd fd, const std::string &path);

    const std::string &path() const { return path_; }
    int fd() const { return fd_.get(); }
    std::uint64_t size() const { return size_; }
    bool header_valid() const { return valid_; }
    const Header &header() const { return header_; }
    // Valid records of slots within the store, and the shards among them
    // that may be restored (complete or committed).
    const std::vector<ShardInfo> &records() const { return records_; }
    std::vector<ShardInfo> shards() const;
    Result<SlotRecord> reread_record(std::uint32_t slot) const;
    std::optional<PersistSettings> persist_info() const;

    // Reads [offset, offset + len); an error when the file ends before.
    Status read(std::uint64_t offset, void *dst, std::size_t len) const;
    // CRC32C of [offset, offset + len), read in pieces of kReadPiece.
    Result<std::uint32_t> crc(std::uint64_t offset, std::uint64_t len) const;
    // The piece table of a record of this store (as StoreFile's); an error
    // when the file ends before it.
    Result<std::optional<std::vector<std::uint32_t>>> piece_table(const SlotRecord &rec) const;
    static constexpr std::size_t kReadPiece = 8u << 20;

private:
    StoreReader() = default;
    std::string path_;
    UniqueFd fd_;
    std::uint64_t size_ = 0;
    bool valid_ = false;
    Header header_{};
    PersistInfo persist_{};
    std::vector<ShardInfo> records_;
};

}  // namespace tck::store
