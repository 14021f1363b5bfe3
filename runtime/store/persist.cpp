#include "persist.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <set>
#include <sstream>

#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/parse.hpp"
#include "common/small_file.hpp"
#include "crc32c.hpp"
#include "store_format.hpp"

namespace tck::persist {

namespace {

constexpr std::uint64_t kAlign = 4096;        // O_DIRECT: buffer, offset and length
constexpr std::size_t kMaxManifestBytes = 64u << 20;
constexpr std::size_t kMaxSidecarBytes = 4096;
constexpr const char *kManifest = "MANIFEST";
constexpr const char *kManifestMagic = "tierckpt-persist 1";
constexpr const char *kSidecarMagic = "tierckpt-shard 1";
// "shard 0 bytes 0 crc32c 00000000\n"
constexpr std::size_t kMinShardLine = 32;

Status sys_error(std::string_view what, const std::string &path, int err) {
    return error(TIERCKPT_ERR_IO, "{} {}: {}", what, path, std::strerror(err));
}

std::string shard_name(std::uint32_t rank) { return "shard." + std::to_string(rank); }
std::string sidecar_name(std::uint32_t rank) { return shard_name(rank) + ".meta"; }

// A temporary name no other writer (thread, process, node) uses.
std::string tmp_name(const std::string &final_name) {
    static std::atomic<unsigned> counter{0};
    char host[64] = {};
    ::gethostname(host, sizeof host - 1);
    for (char &c : host) {
        if (c == '/') c = '_';
    }
    return "." + final_name + ".tmp." + host + "." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

Status write_all(int fd, const void *p, std::size_t n, std::uint64_t off, const std::string &shown) {
    const auto *b = static_cast<const std::uint8_t *>(p);
    while (n > 0) {
        ssize_t w = ::pwrite(fd, b, n, static_cast<off_t>(off));
        if (w < 0) {
            if (errno == EINTR) continue;
            return sys_error("cannot write", shown, errno);
        }
        if (w == 0) return error(TIERCKPT_ERR_IO, "cannot write {}: no progress", shown);
        b += w;
        off += static_cast<std::uint64_t>(w);
        n -= static_cast<std::size_t>(w);
    }
    return Status::ok();
}

// Removes the entries of an open directory that tierckpt writes (regular
// files, links: unlinkat never follows), then the directory itself.
Status remove_dir_at(int parent, const std::string &name, const std::string &shown) {
    UniqueFd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) return Status::ok();
        return sys_error("cannot open", shown, errno);
    }
    // The manifest first: a version half removed is never complete.
    if (::unlinkat(fd.get(), kManifest, 0) != 0 && errno != ENOENT) {
        return sys_error("cannot remove", shown + "/" + kManifest, errno);
    }
    int dup = ::dup(fd.get());
    DIR *d = dup >= 0 ? ::fdopendir(dup) : nullptr;
    if (!d) {
        if (dup >= 0) ::close(dup);
        return sys_error("cannot read", shown, errno);
    }
    std::vector<std::string> names;
    while (struct dirent *e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    }
    ::closedir(d);
    for (const auto &n : names) {
        if (::unlinkat(fd.get(), n.c_str(), 0) != 0 && errno != ENOENT) {
            return sys_error("cannot remove", shown + "/" + n, errno);
        }
    }
    if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
        return sys_error("cannot remove", shown, errno);
    }
    return Status::ok();
}

std::string utc_now() {
    std::time_t t = std::time(nullptr);
    struct tm tm {};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// "key value" words of one line.
bool take_u64(std::istringstream &in, const char *key, std::uint64_t &out) {
    std::string k;
    if (!(in >> k) || k != key) return false;
    std::string v;
    if (!(in >> v) || v.empty() || v.size() > 20) return false;
    char *end = nullptr;
    errno = 0;
    unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    if (errno || *end || v[0] == '-') return false;
    out = n;
    return true;
}
bool take_crc(std::istringstream &in, const char *key, std::uint32_t &out) {
    std::string k, v;
    if (!(in >> k) || k != key || !(in >> v) || v.size() != 8) return false;
    char *end = nullptr;
    unsigned long n = std::strtoul(v.c_str(), &end, 16);
    if (*end) return false;
    out = static_cast<std::uint32_t>(n);
    return true;
}

}  // namespace

std::string version_dir_name(std::uint64_t version) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "v%012" PRIu64, version);
    return buf;
}

bool parse_version_dir(const std::string &name, std::uint64_t &version) {
    if (name.size() < 13 || name.size() > 21 || name[0] != 'v') return false;
    std::uint64_t n = 0;
    for (std::size_t i = 1; i < name.size(); ++i) {
        char c = name[i];
        if (c < '0' || c > '9') return false;
        if (n > (UINT64_MAX - 9) / 10) return false;
        n = n * 10 + static_cast<unsigned>(c - '0');
    }
    version = n;
    return version_dir_name(n) == name;
}

std::string format_manifest(const Manifest &m) {
    std::string s = fmt::format("{}\nversion {}\nworld {}\njob {}\nwritten {}\n", kManifestMagic, m.version, m.world,
                                m.job_id, m.written.empty() ? utc_now() : m.written);
    for (std::size_t r = 0; r < m.shards.size(); ++r) {
        s += fmt::format("shard {} bytes {} crc32c {:08x}\n", r, m.shards[r].bytes, m.shards[r].crc);
    }
    s += fmt::format("end crc32c {:08x}\n", crc32c(s.data(), s.size()));
    return s;
}

Result<Manifest> parse_manifest(const std::string &text) {
    auto bad = [](const std::string &why) { return error(TIERCKPT_ERR_CORRUPT, "bad MANIFEST: {}", why); };
    auto end = text.rfind("end crc32c ");
    if (end == std::string::npos || (end > 0 && text[end - 1] != '\n')) return bad("no end line (cut short?)");
    std::istringstream tail(text.substr(end + 4));  // "crc32c XXXXXXXX"
    std::uint32_t want = 0;
    if (!take_crc(tail, "crc32c", want)) return bad("unreadable end line");
    if (crc32c(text.data(), end) != want) return bad("its checksum does not match (altered or cut short)");
    std::istringstream in(text.substr(0, end));
    std::string line;
    if (!std::getline(in, line) || line != kManifestMagic) return bad("not a tierckpt manifest");
    Manifest m;
    std::uint64_t world = 0;
    for (const char *key : {"version", "world", "job"}) {
        if (!std::getline(in, line)) return bad(std::string("no ") + key + " line");
        std::istringstream l(line);
        std::uint64_t v = 0;
        if (!take_u64(l, key, v)) return bad("bad " + std::string(key) + " line");
        if (std::strcmp(key, "version") == 0) m.version = v;
        else if (std::strcmp(key, "world") == 0) world = v;
        else m.job_id = v;
    }
    // Every rank has a line of at least kMinShardLine bytes: a world larger
    // than the text allows is refused before anything is sized by it.
    if (world == 0 || world > (1u << 24) || world > text.size() / kMinShardLine) return bad("bad world size");
    m.world = static_cast<std::uint32_t>(world);
    if (!std::getline(in, line) || line.rfind("written ", 0) != 0) return bad("no written line");
    m.written = line.substr(8);
    m.shards.resize(m.world);
    for (std::uint32_t r = 0; r < m.world; ++r) {
        if (!std::getline(in, line)) return bad("shard lines missing");
        std::istringstream l(line);
        std::uint64_t rank = 0, bytes = 0;
        std::uint32_t crc = 0;
        if (!take_u64(l, "shard", rank) || rank != r) return bad("shard lines out of order");
        if (!take_u64(l, "bytes", bytes) || !take_crc(l, "crc32c", crc)) return bad("bad shard line");
        m.shards[r] = {bytes, crc, true};
    }
    return m;
}

std::string format_sidecar(const ShardMeta &m) {
    return fmt::format("{} rank {} world {} version {} bytes {} crc32c {:08x} job {}\n", kSidecarMagic, m.rank, m.world,
                       m.version, m.bytes, m.crc, m.job_id);
}

Result<ShardMeta> parse_sidecar(const std::string &text) {
    std::istringstream in(text);
    std::string a, b;
    ShardMeta m;
    std::uint64_t rank = 0, world = 0;
    if (!(in >> a >> b) || a + " " + b != kSidecarMagic || !take_u64(in, "rank", rank) ||
        !take_u64(in, "world", world) || !take_u64(in, "version", m.version) || !take_u64(in, "bytes", m.bytes) ||
        !take_crc(in, "crc32c", m.crc) || !take_u64(in, "job", m.job_id) || world == 0 || rank >= world ||
        world > (1u << 24)) {
        return error(TIERCKPT_ERR_CORRUPT, "bad shard sidecar");
    }
    m.rank = static_cast<std::uint32_t>(rank);
    m.world = static_cast<std::uint32_t>(world);
    return m;
}

Result<Dir> Dir::open(const std::string &path, bool create, bool read_only) {
    auto p = parse_abs_path("persistent directory", path);
    if (!p) return p.status();
    if (create) {
        // mkdir -p, 0700 for what we make.
        for (std::size_t at = 1; at <= path.size(); ++at) {
            if (at != path.size() && path[at] != '/') continue;
            std::string prefix = path.substr(0, at);
            if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
                return sys_error("cannot create the persistent directory", prefix, errno);
            }
        }
    }
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
        int err = errno;
        if (err == ENOENT) {
            return error(TIERCKPT_ERR_NOT_FOUND, "the persistent directory {} does not exist (removed?)", path);
        }
        return sys_error("cannot open the persistent directory", path, err);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return sys_error("cannot stat", path, errno);
    if (!S_ISDIR(st.st_mode)) return error(TIERCKPT_ERR_INVALID, "the persistent directory {} is not a directory", path);
    // Root too: privileged code writes a user's checkpoints only after it
    // became that user (privilege.hpp), never into someone else's directory.
    if (!read_only && st.st_uid != ::geteuid()) {
        return error(TIERCKPT_ERR_INVALID,
                     "the persistent directory {} belongs to uid {}, not to you (uid {}); refusing to write "
                     "checkpoints there: give a directory of your own",
                     path, st.st_uid, ::geteuid());
    }
    return Dir(path, std::move(fd));
}

Result<UniqueFd> Dir::open_version(std::uint64_t version, bool create) const {
    std::string name = version_dir_name(version);
    if (create && ::mkdirat(fd_.get(), name.c_str(), 0700) == 0) {
        (void)::fsync(fd_.get());  // the new entry
    } else if (create && errno != EEXIST) {
        return sys_error("cannot create", path_ + "/" + name, errno);
    }
    UniqueFd fd(::openat(fd_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        int err = errno;
        if (err == ENOENT) return error(TIERCKPT_ERR_NOT_FOUND, "{}/{} does not exist", path_, name);
        if (err == ELOOP || err == ENOTDIR) {
            return error(TIERCKPT_ERR_INVALID, "{}/{} is a symlink or not a directory; refusing to use it: remove it",
                         path_, name);
        }
        return sys_error("cannot open", path_ + "/" + name, err);
    }
    return fd;
}

Status Dir::write_small_file(int dirfd, const std::string &dir_shown, const std::string &name,
                             const std::string &text) {
    std::string tmp = tmp_name(name);
    UniqueFd fd(::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return sys_error("cannot create", dir_shown + "/" + tmp, errno);
    Status st = write_all(fd.get(), text.data(), text.size(), 0, dir_shown + "/" + name);
    if (st && ::fsync(fd.get()) != 0) st = sys_error("cannot sync", dir_shown + "/" + name, errno);
    fd.reset();
    if (st && ::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) {
        st = sys_error("cannot rename into place", dir_shown + "/" + name, errno);
    }
    if (!st) {
        ::unlinkat(dirfd, tmp.c_str(), 0);
        return st;
    }
    if (::fsync(dirfd) != 0) return sys_error("cannot sync", dir_shown, errno);
    return Status::ok();
}

Status Dir::write_shard(const ShardMeta &meta, const std::uint8_t *data, std::uint64_t readable, bool verify,
                        WriteStats *stats, const std::function<void()> &before_chunk) {
    // Whole aligned blocks straight from the mapping; the rest (and any
    // source that is not aligned) through the aligned buffer.
    const bool src_aligned = reinterpret_cast<std::uintptr_t>(data) % kAlign == 0;
    auto from_memory = [&](std::uint64_t off, std::uint64_t n, std::uint64_t padded,
                           std::uint8_t *scratch) -> Result<const std::uint8_t *> {
        if (padded == 0 || (src_aligned && off + padded <= readable)) return data + off;
        std::memcpy(scratch, data + off, n);
        std::memset(scratch + n, 0, padded - n);
        return static_cast<const std::uint8_t *>(scratch);
    };
    return write_shard_from(meta, from_memory, verify, stats, before_chunk);
}

Status Dir::write_shard(const ShardMeta &meta, const store::StoreReader &store, std::uint64_t offset, bool verify) {
    if (offset > store.size() || meta.bytes > store.size() - offset) {
        return error(TIERCKPT_ERR_CORRUPT, "rank {}'s shard of version {} lies beyond the store {}", meta.rank,
                     meta.version, store.path());
    }
    auto from_file = [&](std::uint64_t off, std::uint64_t n, std::uint64_t padded,
                         std::uint8_t *scratch) -> Result<const std::uint8_t *> {
        Status st = store.read(offset + off, scratch, n);
        if (!st) return st;
        if (padded > n) std::memset(scratch + n, 0, padded - n);
        return static_cast<const std::uint8_t *>(scratch);
    };
    return write_shard_from(meta, from_file, verify, nullptr, {});
}

Status Dir::write_shard_from(const ShardMeta &meta, const ChunkSource &source, bool verify, WriteStats *stats,
                             const std::function<void()> &before_chunk) {
    double t0 = now_ms();
    auto vfd = open_version(meta.version, true);
    if (!vfd) return vfd.status();
    const std::string vshown = path_ + "/" + version_dir_name(meta.version);
    const std::string name = shard_name(meta.rank), shown = vshown + "/" + name;
    const std::string tmp = tmp_name(name);
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd fd(::openat(vfd->get(), tmp.c_str(), flags | O_DIRECT, 0600));
    bool direct = true;
    if (!fd && errno == EINVAL) {  // no O_DIRECT on this file system (tmpfs, some FUSE)
        direct = false;
        fd.reset(::openat(vfd->get(), tmp.c_str(), flags, 0600));
    }
    if (!fd) return sys_error("cannot create", vshown + "/" + tmp, errno);

    auto fail = [&](Status st) {
        fd.reset();
        ::unlinkat(vfd->get(), tmp.c_str(), 0);
        return st;
    };
    // The source hands out each chunk, padded to whole blocks while
    // O_DIRECT is on; the file is cut to its size at the end. The aligned
    // buffer is the sources' scratch space.
    void *p = nullptr;
    if (::posix_memalign(&p, kAlign, kWriteChunk) != 0) {
        return fail(error(TIERCKPT_ERR_NO_MEMORY, "no memory for a write buffer"));
    }
    std::unique_ptr<std::uint8_t, decltype(&std::free)> scratch(static_cast<std::uint8_t *>(p), &std::free);
    std::uint32_t crc = 0;
    std::uint64_t off = 0;
    while (off < meta.bytes) {
        std::uint64_t n = std::min(kWriteChunk, meta.bytes - off);
        std::uint64_t wlen = direct ? (n + kAlign - 1) / kAlign * kAlign : n;
        if (before_chunk) before_chunk();
        auto got = source(off, n, direct ? wlen : 0, scratch.get());
        if (!got) return fail(got.status());
        const std::uint8_t *src = *got;
        ssize_t w;
        do {
            w = ::pwrite(fd.get(), src, wlen, static_cast<off_t>(off));
        } while (w < 0 && errno == EINTR);
        if (w < 0 && errno == EINVAL && direct) {
            // The file system took O_DIRECT at open but not this write:
            // go on without it (this chunk again, unpadded).
            direct = false;
            int fl = ::fcntl(fd.get(), F_GETFL);
            if (fl < 0 || ::fcntl(fd.get(), F_SETFL, fl & ~O_DIRECT) != 0) {
                return fail(sys_error("cannot turn off O_DIRECT on", shown, errno));
            }
            continue;
        }
        if (w < 0) return fail(sys_error("cannot write", shown, errno));
        if (static_cast<std::uint64_t>(w) != wlen) {
            // A short write (O_DIRECT at the end of the space): finish it plainly.
            if (direct) {
                int fl = ::fcntl(fd.get(), F_GETFL);
                if (fl >= 0) (void)::fcntl(fd.get(), F_SETFL, fl & ~O_DIRECT);
            }
            Status st = write_all(fd.get(), src + w, static_cast<std::size_t>(wlen - static_cast<std::uint64_t>(w)),
                                  off + static_cast<std::uint64_t>(w), shown);
            if (!st) return fail(st);
        }
        // What was written, not what is there now: the source may change.
        if (verify) crc = crc32c(src, static_cast<std::size_t>(n), crc);
        off += n;
    }
    if (direct && ::ftruncate(fd.get(), static_cast<off_t>(meta.bytes)) != 0) {
        return fail(sys_error("cannot set the size of", shown, errno));
    }
    if (::fsync(fd.get()) != 0) return fail(sys_error("cannot sync", shown, errno));
    if (verify && crc != meta.crc) {
        return fail(error(TIERCKPT_ERR_CORRUPT,
                          "rank {}'s shard of version {} changed while it was written (its slot was reused?); not "
                          "flushed",
                          meta.rank, meta.version));
    }
    fd.reset();
    if (::renameat(vfd->get(), tmp.c_str(), vfd->get(), name.c_str()) != 0) {
        return fail(sys_error("cannot rename into place", shown, errno));
    }
    Status st = write_small_file(vfd->get(), vshown, sidecar_name(meta.rank), format_sidecar(meta));
    if (!st) {
        ::unlinkat(vfd->get(), name.c_str(), 0);
        return st;
    }
    if (stats) {
        stats->ms = now_ms() - t0;
        stats->direct = direct;
    }
    return Status::ok();
}

Status Dir::write_manifest(const Manifest &m) {
    auto vfd = open_version(m.version, false);
    if (!vfd) return vfd.status();
    return write_small_file(vfd->get(), path_ + "/" + version_dir_name(m.version), kManifest, format_manifest(m));
}

Result<Manifest> Dir::read_manifest(std::uint64_t version) const {
    auto vfd = open_version(version, false);
    if (!vfd) return vfd.status();
    std::string shown = path_ + "/" + version_dir_name(version) + "/" + kManifest;
    auto text = read_small_file_at(vfd->get(), kManifest, shown, kMaxManifestBytes, O_NOFOLLOW);
    if (!text) return text.status();
    auto m = parse_manifest(*text);
    if (!m) return error(m.status().code(), "{}: {}", shown, m.status().message());
    if (m->version != version) {
        return error(TIERCKPT_ERR_CORRUPT, "{} says version {}, its directory {}", shown, m->version, version);
    }
    return m;
}

std::optional<ShardMeta> Dir::read_sidecar(std::uint64_t version, std::uint32_t rank) const {
    auto vfd = open_version(version, false);
    if (!vfd) return std::nullopt;
    auto text = read_small_file_at(vfd->get(), sidecar_name(rank), sidecar_name(rank), kMaxSidecarBytes, O_NOFOLLOW);
    if (!text) return std::nullopt;
    auto m = parse_sidecar(*text);
    if (!m || m->rank != rank || m->version != version) return std::nullopt;
    return *m;
}

Result<UniqueFd> Dir::open_shard(std::uint64_t version, std::uint32_t rank, const ShardEntry &expect,
                                 std::string &shown) const {
    auto vfd = open_version(version, false);
    if (!vfd) return vfd.status();
    shown = path_ + "/" + version_dir_name(version) + "/" + shard_name(rank);
    struct stat st {};
    auto fd = open_regular_at(vfd->get(), shard_name(rank), shown, O_RDONLY, &st);
    if (!fd) {
        if (fd.status().code() == TIERCKPT_ERR_NOT_FOUND) return error(TIERCKPT_ERR_CORRUPT, "{} is missing", shown);
        return error(fd.status().code() == TIERCKPT_ERR_INVALID ? TIERCKPT_ERR_CORRUPT : fd.status().code(), "{}",
                     fd.status().message());
    }
    if (static_cast<std::uint64_t>(st.st_size) != expect.bytes) {
        return error(TIERCKPT_ERR_CORRUPT, "{} is {} bytes, its manifest says {} (truncated or altered)", shown,
                     st.st_size, expect.bytes);
    }
    return std::move(*fd);
}

Result<std::vector<std::uint8_t>> Dir::read_shard(std::uint64_t version, std::uint32_t rank,
                                                  const ShardEntry &expect) const {
    std::string shown;
    auto fd = open_shard(version, rank, expect, shown);
    if (!fd) return fd.status();
    // The size is the file's own (checked against the manifest above).
    std::vector<std::uint8_t> buf(expect.bytes);
    Status st = read_exact_at(fd->get(), buf.data(), expect.bytes, 0, shown);
    if (!st) return st;
    if (crc32c(buf.data(), buf.size()) != expect.crc) {
        return error(TIERCKPT_ERR_CORRUPT, "{}: checksum mismatch (altered or damaged)", shown);
    }
    return buf;
}

Result<std::vector<store::RegionEntry>> Dir::read_shard_manifest(std::uint64_t version, std::uint32_t rank,
                                                                 const ShardEntry &expect) const {
    std::string shown;
    auto fd = open_shard(version, rank, expect, shown);
    if (!fd) return fd.status();
    store::ManifestHead head{};
    if (expect.bytes < sizeof head) return error(TIERCKPT_ERR_CORRUPT, "{}: shorter than a shard manifest", shown);
    if (Status st = read_exact_at(fd->get(), &head, sizeof head, 0, shown); !st) return st;
    // Its size follows from the count, bounded by the file before anything
    // is allocated (the parser checks the magic and the entries).
    const bool layout = std::memcmp(head.magic, store::kManifestMagicLayout, sizeof head.magic) == 0;
    const std::uint64_t entry = layout ? sizeof(store::LayoutEntry) : sizeof(store::ManifestEntry);
    if (head.nregions > (expect.bytes - sizeof head) / entry) {
        return error(TIERCKPT_ERR_CORRUPT, "{}: its manifest claims more regions than the file holds", shown);
    }
    std::vector<std::uint8_t> buf(store::manifest_bytes(head.nregions, layout));
    if (Status st = read_exact_at(fd->get(), buf.data(), buf.size(), 0, shown); !st) return st;
    // The user may rewrite the file between the two reads: the parser must
    // see the count buf was sized by.
    if (std::memcmp(buf.data(), &head, sizeof head) != 0) {
        return error(TIERCKPT_ERR_CORRUPT, "{}: its manifest changed while it was read", shown);
    }
    // Parsed against the whole shard's size: the regions must fit in it.
    // The parser reads no further than the entries, which buf holds.
    auto entries = store::parse_shard_manifest(buf.data(), expect.bytes);
    if (!entries) return error(entries.status().code(), "{}: {}", shown, entries.status().message());
    return entries;
}

Status Dir::verify_shard(std::uint64_t version, std::uint32_t rank, const ShardEntry &expect) const {
    std::string shown;
    auto fd = open_shard(version, rank, expect, shown);
    if (!fd) return fd.status();
    auto crc = crc32c_file(fd->get(), 0, expect.bytes, kWriteChunk, shown);
    if (!crc) return crc.status();
    if (*crc != expect.crc) return error(TIERCKPT_ERR_CORRUPT, "{}: checksum mismatch (altered or damaged)", shown);
    return Status::ok();
}

Result<std::vector<VersionInfo>> Dir::list() const {
    int dup = ::dup(fd_.get());
    DIR *d = dup >= 0 ? ::fdopendir(dup) : nullptr;
    if (!d) {
        if (dup >= 0) ::close(dup);
        return sys_error("cannot read", path_, errno);
    }
    ::rewinddir(d);
    std::vector<VersionInfo> out;
    while (struct dirent *e = ::readdir(d)) {
        VersionInfo vi;
        if (!parse_version_dir(e->d_name, vi.version)) continue;
        struct stat st {};
        if (::fstatat(fd_.get(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) continue;
        out.push_back(vi);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end(), [](const VersionInfo &a, const VersionInfo &b) { return a.version < b.version; });
    for (auto &vi : out) {
        auto m = read_manifest(vi.version);
        if (m) {
            vi.complete = true;
            vi.manifest = *m;
        } else {
            vi.problem = m.status().code() == TIERCKPT_ERR_NOT_FOUND ? "no MANIFEST (a flush in progress or cut short)"
                                                                     : m.status().message();
        }
        auto vfd = open_version(vi.version, false);
        if (!vfd) continue;
        int vdup = ::dup(vfd->get());
        DIR *vd = vdup >= 0 ? ::fdopendir(vdup) : nullptr;
        if (!vd) {
            if (vdup >= 0) ::close(vdup);
            continue;
        }
        while (struct dirent *e = ::readdir(vd)) {
            std::string n = e->d_name;
            if (n.rfind("shard.", 0) != 0 || n.find(".meta") != std::string::npos) continue;
            std::uint64_t r = 0;
            auto parsed = parse_uint("shard", n.substr(6), 0, UINT32_MAX);
            if (!parsed) continue;
            r = *parsed;
            vi.shard_files.push_back(static_cast<std::uint32_t>(r));
        }
        ::closedir(vd);
        std::sort(vi.shard_files.begin(), vi.shard_files.end());
    }
    return out;
}

std::optional<Manifest> Dir::newest() const {
    auto all = list();
    if (!all) return std::nullopt;
    for (auto it = all->rbegin(); it != all->rend(); ++it) {
        if (it->complete) return it->manifest;
    }
    return std::nullopt;
}

Result<bool> Dir::complete_from_sidecars(std::uint64_t version, std::uint64_t job_id) {
    if (read_manifest(version)) return true;
    auto vfd = open_version(version, false);
    if (!vfd) return vfd.status();
    std::optional<ShardMeta> first;
    for (std::uint32_t r = 0; !first && r < (1u << 24); ++r) {
        first = read_sidecar(version, r);
        if (!first) return false;  // rank 0 (or the first) missing: not yet
    }
    Manifest m;
    m.version = version;
    m.world = first->world;
    m.job_id = job_id ? job_id : first->job_id;
    m.shards.resize(m.world);
    for (std::uint32_t r = 0; r < m.world; ++r) {
        auto s = r == first->rank ? first : read_sidecar(version, r);
        if (!s || s->world != m.world) return false;
        m.shards[r] = {s->bytes, s->crc, true};
    }
    Status st = write_manifest(m);
    if (!st) return st;
    return true;
}

Status Dir::remove_version(std::uint64_t version) {
    std::string name = version_dir_name(version);
    Status st = remove_dir_at(fd_.get(), name, path_ + "/" + name);
    if (st) (void)::fsync(fd_.get());
    return st;
}

Status Dir::retain(std::uint32_t keep) {
    if (keep == 0) keep = 1;
    auto all = list();
    if (!all) return all.status();
    std::vector<std::uint64_t> complete;
    for (const auto &vi : *all) {
        if (vi.complete) complete.push_back(vi.version);
    }
    if (complete.empty()) return Status::ok();
    std::uint64_t newest = complete.back();
    std::set<std::uint64_t> kept(complete.end() - std::min<std::size_t>(keep, complete.size()), complete.end());
    Status first_error;
    for (const auto &vi : *all) {
        bool drop = vi.complete ? kept.count(vi.version) == 0 : vi.version < newest;
        if (!drop) continue;
        Status st = remove_version(vi.version);
        if (!st && first_error) first_error = st;
        if (st) log::info("persistent tier {}: removed version {} ({})", path_, vi.version,
                          vi.complete ? "older than the newest " + std::to_string(keep) : "incomplete");
    }
    return first_error;
}

Result<ScavengeResult> scavenge(const std::string &store_path, const std::string &dir_override,
                                std::uint32_t keep_override, const std::vector<std::string> &allowed) {
    auto f = store::StoreReader::open(store_path);
    if (!f) return f.status();
    return scavenge(*f, dir_override, keep_override, allowed);
}

Result<ScavengeResult> scavenge(const store::StoreReader &store, const std::string &dir_override,
                                std::uint32_t keep_override, const std::vector<std::string> &allowed) {
    ScavengeResult res;
    const store::StoreReader *f = &store;
    if (!f->header_valid()) return error(TIERCKPT_ERR_CORRUPT, "{}: no valid store header", store.path());
    auto info = f->persist_info();
    std::uint32_t keep = keep_override ? keep_override : (info && info->keep ? info->keep : kDefaultKeep);
    res.dir = !dir_override.empty() ? dir_override : info ? info->dir : std::string();
    if (res.dir.empty()) {
        res.note = "the store names no persistent directory (the job ran without --ckpt-persist): nothing to do";
        return res;
    }
    auto p = parse_abs_path("persistent directory", res.dir);
    if (!p) return p.status();
    if (!allowed.empty()) {
        bool ok = false;
        for (const auto &a : allowed) ok = ok || path_is_under(res.dir, a);
        if (!ok) return error(TIERCKPT_ERR_INVALID, "{} is not below a directory the admin allows", res.dir);
    }
    res.version = f->header().committed_version;
    if (res.version == 0) {
        res.note = "the store holds no committed version: nothing to do";
        return res;
    }
    auto dir = Dir::open(res.dir, true);
    if (!dir) return dir.status();
    if (auto m = dir->newest()) res.on_disk = m->version;
    if (res.on_disk >= res.version) {
        res.complete = res.on_disk == res.version;
        res.note = fmt::format("version {} is in {} already (newest there: {}): nothing to do", res.version, res.dir,
                               res.on_disk);
        return res;
    }
    // The node's own shards first, then its copies of other nodes' shards
    // that no one has written yet.
    std::vector<store::ShardInfo> shards;
    for (const auto &s : f->shards()) {
        if (s.rec.version == res.version) shards.push_back(s);
    }
    std::stable_sort(shards.begin(), shards.end(),
                     [](const store::ShardInfo &a, const store::ShardInfo &b) { return a.rec.kind < b.rec.kind; });
    std::set<std::uint32_t> done;
    Status first_error;
    for (const auto &s : shards) {
        if (done.count(s.rec.rank)) continue;
        auto side = dir->read_sidecar(res.version, s.rec.rank);
        if (side && side->crc == s.rec.payload_crc && side->bytes == s.rec.payload_bytes) {
            done.insert(s.rec.rank);
            continue;
        }
        ShardMeta meta;
        meta.rank = s.rec.rank;
        meta.world = s.rec.world;
        meta.version = s.rec.version;
        meta.bytes = s.rec.payload_bytes;
        meta.crc = s.rec.payload_crc;
        meta.job_id = s.rec.job_id;
        Status st = dir->write_shard(meta, *f, s.rec.offset, true);
        // The slot must still hold what was written (a running job may
        // reuse it: the CRC check above catches changed bytes).
        auto after = f->reread_record(s.slot);
        if (st && (!after || after->seq != s.rec.seq || after->version != s.rec.version)) {
            st = error(TIERCKPT_ERR_CORRUPT, "rank {}'s slot changed while it was written", s.rec.rank);
        }
        if (!st) {
            log::warn("flush of rank {}'s shard of version {}: {}", s.rec.rank, res.version, st.message());
            if (first_error) first_error = st;
            continue;
        }
        done.insert(s.rec.rank);
        ++res.written;
    }
    if (res.written == 0 && !first_error) {
        // Nothing of ours went in: leave no empty version directory behind
        // (it fails harmlessly when other nodes' shards are there).
        (void)::unlinkat(dir->fd_for_cleanup(), version_dir_name(res.version).c_str(), AT_REMOVEDIR);
        return first_error;
    }
    auto completed = dir->complete_from_sidecars(res.version, f->header().job_id);
    if (!completed) return completed.status();
    res.complete = *completed;
    if (res.complete) {
        Status st = dir->retain(keep);
        if (!st) log::warn("retention in {}: {}", res.dir, st.message());
    }
    if (!first_error && !res.complete) return first_error;
    res.note = res.complete ? fmt::format("version {} is complete in {}", res.version, res.dir)
                            : fmt::format("version {}: this node's shards are in {}; the version is complete when "
                                          "every node has flushed",
                                          res.version, res.dir);
    return res;
}

}  // namespace tck::persist
