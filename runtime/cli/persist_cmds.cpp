// tierckpt flush, and tierckpt ls / verify on a persistent directory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/env_names.hpp"
#include "common/parse.hpp"
#include "common/privilege.hpp"
#include "common/size.hpp"
#include "common/small_file.hpp"
#include "store/persist.hpp"
#include "store_cmds.hpp"

namespace tck::cli {

namespace {


struct PRow {
    std::string dir;
    std::uint64_t version = 0;
    std::uint32_t world = 0;
    std::uint32_t rank = 0;
    std::uint64_t bytes = 0;
    std::uint32_t crc = 0;
    std::uint64_t job = 0;
    bool complete = false;
    std::string check;
};

}  // namespace

bool looks_persistent(const std::string &path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
    auto dir = persist::Dir::open(path, false, true);
    if (!dir) return false;
    auto all = dir->list();
    return all && !all->empty();
}

int cmd_persist_ls(const std::vector<std::string> &paths, bool verify, bool json) {
    const char *name = verify ? "verify" : "ls";
    std::vector<PRow> rows;
    int failures = 0;
    for (const auto &p : paths) {
        auto dir = persist::Dir::open(p, false, true);
        if (!dir) {
            fmt::print(stderr, "tierckpt {}: {}\n", name, dir.status().message());
            ++failures;
            continue;
        }
        auto all = dir->list();
        if (!all) {
            fmt::print(stderr, "tierckpt {}: {}\n", name, all.status().message());
            ++failures;
            continue;
        }
        for (const auto &vi : *all) {
            if (!vi.complete) {
                if (!vi.problem.empty() && vi.problem.find("no MANIFEST") == std::string::npos) {
                    fmt::print(stderr, "tierckpt {}: version {}: {}\n", name, vi.version, vi.problem);
                }
                for (auto r : vi.shard_files) {
                    PRow row{p, vi.version, 0, r, 0, 0, 0, false, verify ? "-" : ""};
                    if (auto side = dir->read_sidecar(vi.version, r)) {
                        row.world = side->world;
                        row.bytes = side->bytes;
                        row.crc = side->crc;
                        row.job = side->job_id;
                    }
                    rows.push_back(row);
                }
                if (vi.shard_files.empty()) rows.push_back({p, vi.version, 0, 0, 0, 0, 0, false, verify ? "-" : ""});
                continue;
            }
            const auto &m = vi.manifest;
            for (std::uint32_t r = 0; r < m.world; ++r) {
                PRow row{p, vi.version, m.world, r, m.shards[r].bytes, m.shards[r].crc, m.job_id, true, ""};
                if (verify) {
                    Status got = dir->verify_shard(vi.version, r, m.shards[r]);
                    row.check = got ? "ok" : "corrupt";
                    if (!got) {
                        fmt::print(stderr, "tierckpt verify: {}\n", got.message());
                        ++failures;
                    }
                }
                rows.push_back(row);
            }
        }
    }
    if (json) {
        fmt::print("[");
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const auto &r = rows[i];
            fmt::print("{}\n  {{\"dir\": {}, \"version\": {}, \"world\": {}, \"rank\": {}, \"bytes\": {}, "
                       "\"crc32c\": \"{:08x}\", \"job\": {}, \"state\": \"{}\"{}}}",
                       i ? "," : "", json_string(r.dir), r.version, r.world, r.rank, r.bytes, r.crc, r.job,
                       r.complete ? "complete" : "incomplete",
                       verify ? fmt::format(", \"check\": \"{}\"", r.check) : "");
        }
        fmt::print("{}]\n", rows.empty() ? "" : "\n");
    } else {
        fmt::print("{:<40} {:>8} {:>5} {:>5} {:>10} {:<10}{}\n", "DIR", "VERSION", "WORLD", "RANK", "BYTES", "STATE",
                   verify ? " CHECK" : "");
        for (const auto &r : rows) {
            fmt::print("{:<40} {:>8} {:>5} {:>5} {:>10} {:<10}{}\n", r.dir, r.version, r.world, r.rank,
                       format_size(r.bytes), r.complete ? "complete" : "incomplete", verify ? " " + r.check : "");
        }
    }
    return failures ? 1 : 0;
}

int cmd_flush(const std::vector<std::string> &args) {
    std::string store, dir;
    std::uint32_t keep = 0;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string &a = args[i];
        if (a == "-h" || a == "--help") {
            fmt::print("Usage: tierckpt flush [--dir DIR] [--keep K] [STORE]\n"
                       "Writes the newest committed version in this node's store (default: $TIERCKPT_STORE) to the\n"
                       "job's persistent directory if it is newer than what is there. See tierckpt(1).\n");
            return 0;
        }
        if ((a == "--dir" || a == "--keep") && i + 1 >= args.size()) {
            fmt::print(stderr, "tierckpt flush: {} needs a value; see tierckpt flush --help\n", a);
            return 2;
        }
        if (a == "--dir") {
            auto p = parse_abs_path("--dir", args[++i]);
            if (!p) {
                fmt::print(stderr, "tierckpt flush: {}\n", p.status().message());
                return 2;
            }
            dir = *p;
        } else if (a == "--keep") {
            auto n = parse_uint("--keep", args[++i], 1, persist::kMaxKeep);
            if (!n) {
                fmt::print(stderr, "tierckpt flush: {}\n", n.status().message());
                return 2;
            }
            keep = static_cast<std::uint32_t>(*n);
        } else if (!a.empty() && a[0] == '-') {
            fmt::print(stderr, "tierckpt flush: unknown option '{}'; see tierckpt flush --help\n", a);
            return 2;
        } else if (store.empty()) {
            store = a;
        } else {
            fmt::print(stderr, "tierckpt flush: give one store; see tierckpt flush --help\n");
            return 2;
        }
    }
    if (store.empty()) {
        const char *env = std::getenv(env::kStore);
        if (!env || !*env) {
            fmt::print(stderr, "tierckpt flush: give a store file ({} is not set)\n", env::kStore);
            return 2;
        }
        store = env;
    }
    // Root opens the store (not following a link, not blocking on a FIFO)
    // and then becomes its owner before anything else: the directory the
    // store names is the user's to choose, so every path in it is opened,
    // created and removed with the user's rights, as the epilog's flush
    // does. See tierckpt(1).
    struct stat st {};
    auto fd = open_regular_at(AT_FDCWD, store, store, O_RDONLY, &st);
    if (!fd) {
        fmt::print(stderr, "tierckpt flush: {}\n", fd.status().message());
        return 1;
    }
    if (::geteuid() == 0 && st.st_uid != 0) {
        Status dropped = become_user(st.st_uid, st.st_gid);
        if (!dropped) {
            fmt::print(stderr, "tierckpt flush: {}: cannot act as its owner (uid {}): {}\n", store, st.st_uid,
                       dropped.message());
            return 1;
        }
    }
    auto reader = store::StoreReader::from_fd(std::move(*fd), store);
    if (!reader) {
        fmt::print(stderr, "tierckpt flush: {}\n", reader.status().message());
        return 1;
    }
    auto r = persist::scavenge(*reader, dir, keep, {});
    if (!r) {
        fmt::print(stderr, "tierckpt flush: {}: {}\n", store, r.status().message());
        return 1;
    }
    fmt::print("tierckpt flush: {}: {} (shards written: {})\n", store, r->note, r->written);
    return 0;
}

}  // namespace tck::cli
