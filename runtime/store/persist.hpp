// The persistent tier: a directory of checkpoints that survive the job
// (tierckpt-persist(5) describes it for people). No MPI here: the runtime,
// the `tierckpt` command and the plugin's epilog all use it.
//
//   DIR/                            0700 when tierckpt creates it
//   DIR/vNNNNNNNNNNNN/              one version (12 digits or more), 0700
//   DIR/vNNNNNNNNNNNN/shard.R       rank R's shard: the same bytes as in
//                                   the node store (manifest + regions), 0600
//   DIR/vNNNNNNNNNNNN/shard.R.meta  one text line: rank, world, version,
//                                   bytes, CRC32C, job; written after the
//                                   shard is on disk (fsync)
//   DIR/vNNNNNNNNNNNN/MANIFEST      text: version, world, job, every
//                                   shard's size and CRC32C, and a CRC of
//                                   the manifest itself; written last,
//                                   renamed into place
//
// A version is complete, and visible to restore, only when its MANIFEST is
// there and valid. Every file is written under a temporary name, synced
// and renamed, so a crash mid-flush leaves nothing that looks complete.
// Nothing is opened through a symlink inside DIR.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/defaults.hpp"
#include "common/status.hpp"
#include "common/unique_fd.hpp"
#include "store_format.hpp"

namespace tck::persist {

inline constexpr std::uint32_t kDefaultKeep = defaults::kPersistKeep;
inline constexpr std::uint32_t kMaxKeep = 1000;
inline constexpr std::uint64_t kWriteChunk = 16ull << 20;  // one write(2)

std::string version_dir_name(std::uint64_t version);  // "v000000000012"
bool parse_version_dir(const std::string &name, std::uint64_t &version);

struct ShardEntry {
    std::uint64_t bytes = 0;
    std::uint32_t crc = 0;
    bool present = false;  // sidecars: a shard.R.meta was found
};

struct Manifest {
    std::uint64_t version = 0;
    std::uint32_t world = 0;
    std::uint64_t job_id = 0;
    std::string written;              // UTC time, ISO 8601
    std::vector<ShardEntry> shards;   // by rank
};
std::string format_manifest(const Manifest &m);
Result<Manifest> parse_manifest(const std::string &text);

struct ShardMeta {
    std::uint32_t rank = 0, world = 0;
    std::uint64_t version = 0, bytes = 0, job_id = 0;
    std::uint32_t crc = 0;
};
std::string format_sidecar(const ShardMeta &m);
Result<ShardMeta> parse_sidecar(const std::string &text);

struct VersionInfo {
    std::uint64_t version = 0;
    bool complete = false;        // a valid MANIFEST
    std::string problem;          // why not complete
    Manifest manifest;            // when complete
    std::vector<std::uint32_t> shard_files;  // ranks with a shard.R file
};

struct WriteStats {
    double ms = 0;
    bool direct = false;  // O_DIRECT was used
};

class Dir {
public:
    // Opens DIR; with create, makes it and missing parents (mode 0700).
    // Refuses a DIR owned by another user (root included: privileged code
    // becomes the user first), unless read_only: inspection only (the
    // `tierckpt ls`/`verify` commands), which never writes or removes.
    static Result<Dir> open(const std::string &path, bool create, bool read_only = false);

    const std::string &path() const { return path_; }

    // Writes rank meta.rank's shard of meta.version from `data`
    // (meta.bytes bytes; `readable` bytes may be read from it, at least
    // meta.bytes), then its sidecar. With verify, the CRC32C of what was
    // written must equal meta.crc (the source may change under a flush that
    // does not own it). Leaves nothing behind on failure. `before_chunk`
    // runs before every write (the runtime holds the flush there while a
    // save copies into the store, so that the two do not compete).
    Status write_shard(const ShardMeta &meta, const std::uint8_t *data, std::uint64_t readable, bool verify,
                       WriteStats *stats = nullptr, const std::function<void()> &before_chunk = {});
    // The same from a node store read with pread (its bytes at `offset`):
    // the end-of-job flush, which reads a store its user may truncate.
    Status write_shard(const ShardMeta &meta, const store::StoreReader &store, std::uint64_t offset, bool verify);
    // Writes MANIFEST last, renamed into place.
    Status write_manifest(const Manifest &m);
    Result<Manifest> read_manifest(std::uint64_t version) const;
    // Rank `rank`'s shard of `version`, checked against the manifest's
    // size and CRC32C. The file's size must equal expect.bytes before
    // anything is allocated; callers check expect.bytes against what they
    // can take (the runtime: its registered regions).
    Result<std::vector<std::uint8_t>> read_shard(std::uint64_t version, std::uint32_t rank,
                                                 const ShardEntry &expect) const;
    // The manifest at the head of rank `rank`'s shard of `version` (the
    // file's size checked against expect.bytes; its checksum is not: the
    // whole shard is read for that), parsed and bounded by
    // store::parse_shard_manifest. For planning an elastic restore.
    Result<std::vector<store::RegionEntry>> read_shard_manifest(std::uint64_t version, std::uint32_t rank,
                                                                const ShardEntry &expect) const;
    // The same check without keeping the bytes: read and checksummed in
    // pieces of kWriteChunk, whatever size the manifest claims.
    Status verify_shard(std::uint64_t version, std::uint32_t rank, const ShardEntry &expect) const;
    // The sidecar of rank `rank` (nullopt: none or unreadable).
    std::optional<ShardMeta> read_sidecar(std::uint64_t version, std::uint32_t rank) const;
    // Every version directory, oldest first.
    Result<std::vector<VersionInfo>> list() const;
    // The newest complete version (nullopt: none).
    std::optional<Manifest> newest() const;
    // When every shard's sidecar of `version` is there, writes the
    // manifest from them (returns true); false while some are missing.
    Result<bool> complete_from_sidecars(std::uint64_t version, std::uint64_t job_id);
    // Keeps the newest `keep` complete versions; removes older complete
    // ones and incomplete ones older than the newest complete.
    Status retain(std::uint32_t keep);
    // Removes a version directory; the MANIFEST goes first.
    Status remove_version(std::uint64_t version);
    // The directory's descriptor, for an rmdir of an empty version.
    int fd_for_cleanup() const { return fd_.get(); }

private:
    Dir(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
    // Bytes [off, off + n) of the shard being written; with padded > 0 (O_DIRECT)
    // as `padded` bytes (zeros after n) at an address aligned for O_DIRECT.
    // `scratch` is an aligned buffer of kWriteChunk bytes the source may
    // fill and return.
    using ChunkSource = std::function<Result<const std::uint8_t *>(std::uint64_t off, std::uint64_t n,
                                                                   std::uint64_t padded, std::uint8_t *scratch)>;
    Status write_shard_from(const ShardMeta &meta, const ChunkSource &source, bool verify, WriteStats *stats,
                            const std::function<void()> &before_chunk);
    Result<UniqueFd> open_shard(std::uint64_t version, std::uint32_t rank, const ShardEntry &expect,
                                std::string &shown) const;
    Result<UniqueFd> open_version(std::uint64_t version, bool create) const;
    Status write_small_file(int dirfd, const std::string &dir_shown, const std::string &name,
                            const std::string &text);

    std::string path_;
    UniqueFd fd_;
};

// The end-of-job flush ("scavenge"): writes the newest committed version
// that the node store holds (the node's own shards, then copies of other
// nodes' shards not written yet) to the store's persistent directory if it
// is newer than the newest complete version there, and completes the
// version's manifest when every shard is written. dir_override replaces
// the directory the store names; allowed (when not empty) lists the
// directories it must lie under. The store is read with pread
// (store::StoreReader): it may change or shrink under the flush. Run it as
// the store's owner (privilege.hpp): it creates and removes files in the
// directory the store names.
struct ScavengeResult {
    std::string dir;
    std::uint64_t version = 0;   // the store's newest committed version (0: none)
    std::uint64_t on_disk = 0;   // the newest complete version found in DIR before
    unsigned written = 0;        // shards written
    bool complete = false;       // the version is complete in DIR now
    std::string note;            // what was done, for people
};
Result<ScavengeResult> scavenge(const store::StoreReader &store, const std::string &dir_override,
                                std::uint32_t keep_override, const std::vector<std::string> &allowed);
Result<ScavengeResult> scavenge(const std::string &store_path, const std::string &dir_override,
                                std::uint32_t keep_override, const std::vector<std::string> &allowed);

}  // namespace tck::persist
