// tierckpt ls / tierckpt verify: what node stores hold, and whether every
// shard still matches its checksum.
#include "store_cmds.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/env_names.hpp"
#include "common/size.hpp"
#include "store/crc32c.hpp"
#include "store/store_format.hpp"

namespace tck::cli {

namespace {

using Range = std::pair<std::uint64_t, std::uint64_t>;

// What is damaged in a shard's payload. With a piece table
// (tierckpt-store(5)): the pieces whose CRC differs, merged into ranges
// (located). Without one: the whole payload or nothing (not located).
// Empty ranges: intact.
struct Damage {
    bool located = false;
    std::vector<Range> ranges;
};

Result<Damage> find_damage(const store::StoreReader &f, const store::SlotRecord &rec) {
    auto table = f.piece_table(rec);
    if (!table) return table.status();
    if (!*table) {
        auto crc = f.crc(rec.offset, rec.payload_bytes);
        if (!crc) return crc.status();
        return Damage{false, *crc == rec.payload_crc ? std::vector<Range>{} : std::vector<Range>{{0, rec.payload_bytes}}};
    }
    // One pass, one buffer: PieceCrc cuts what is read into the table's pieces.
    const std::uint64_t piece = std::uint64_t{1} << rec.piece_shift;
    PieceCrc crc(piece);
    std::vector<std::uint8_t> buf(
        static_cast<std::size_t>(std::min<std::uint64_t>(rec.payload_bytes, store::StoreReader::kReadPiece)));
    for (std::uint64_t done = 0; done < rec.payload_bytes;) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), rec.payload_bytes - done));
        Status st = f.read(rec.offset + done, buf.data(), n);
        if (!st) return st;
        crc.add(buf.data(), n);
        done += n;
    }
    const std::vector<std::uint32_t> got = crc.pieces();
    Damage out{true, {}};
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (got[i] == (**table)[i]) continue;
        const std::uint64_t at = i * piece, end = std::min(rec.payload_bytes, at + piece);
        if (!out.ranges.empty() && out.ranges.back().second == at) out.ranges.back().second = end;
        else out.ranges.emplace_back(at, end);
    }
    return out;
}

std::string describe_damage(const Damage &d, std::uint64_t payload_bytes) {
    if (!d.located) return "its checksum does not match (no piece table: the damage cannot be located)";
    std::uint64_t bytes = 0;
    std::string list;
    for (std::size_t i = 0; i < d.ranges.size(); ++i) {
        bytes += d.ranges[i].second - d.ranges[i].first;
        if (i < 8) list += fmt::format("{}[{}, {})", i ? ", " : "", d.ranges[i].first, d.ranges[i].second);
    }
    if (d.ranges.size() > 8) list += fmt::format(" and {} more", d.ranges.size() - 8);
    return fmt::format("damaged in {} of its {} (payload bytes {})", format_size(bytes), format_size(payload_bytes),
                       list);
}

}  // namespace

std::string json_string(const std::string &s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        if (static_cast<unsigned char>(c) < 0x20) {
            o += fmt::format("\\u{:04x}", c);
            continue;
        }
        o += c;
    }
    return o + "\"";
}

namespace {


// PATH is a store file, or a directory holding job.N/store (a store_dir).
std::vector<std::string> expand(const std::string &path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return {path};
    std::vector<std::string> out;
    if (DIR *d = ::opendir(path.c_str())) {
        while (struct dirent *e = ::readdir(d)) {
            std::string name = e->d_name;
            if (name.rfind("job.", 0) != 0) continue;
            // Neither the job directory nor the store may be a link; a
            // user sees their own stores (root: all of them).
            std::string jd = path + "/" + name, f = jd + "/store";
            if (::lstat(jd.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && ::lstat(f.c_str(), &st) == 0 &&
                S_ISREG(st.st_mode) && (::geteuid() == 0 || st.st_uid == ::geteuid())) {
                out.push_back(f);
            }
        }
        ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    if (out.empty()) out.push_back(path);  // reported as not a store
    return out;
}

struct Row {
    std::string store;
    std::uint32_t slot;
    store::SlotRecord rec;
    std::string check;  // verify: "ok" / "corrupt"
};

}  // namespace

int cmd_store(const std::vector<std::string> &args, bool verify) {
    const char *name = verify ? "verify" : "ls";
    bool json = false;
    std::vector<std::string> paths;
    for (const auto &a : args) {
        if (a == "--json") json = true;
        else if (a == "-h" || a == "--help") {
            fmt::print("Usage: tierckpt {} [--json] [STORE|STORE_DIR]...\n"
                       "       tierckpt {} [--json] PERSIST_DIR...\n"
                       "{} what node stores or persistent directories hold (default: $TIERCKPT_STORE).\n"
                       "See tierckpt(1).\n",
                       name, name, verify ? "Re-checks the checksum of every shard in" : "Lists");
            return 0;
        } else if (!a.empty() && a[0] == '-') {
            fmt::print(stderr, "tierckpt {}: unknown option '{}'; see tierckpt {} --help\n", name, a, name);
            return 2;
        } else {
            paths.push_back(a);
        }
    }
    if (paths.empty()) {
        const char *env = std::getenv(env::kStore);
        if (!env || !*env) {
            fmt::print(stderr, "tierckpt {}: give a store file or store directory ({} is not set)\n", name, env::kStore);
            return 2;
        }
        paths.push_back(env);
    }
    std::size_t npersist = 0;
    for (const auto &p : paths) npersist += looks_persistent(p) ? 1 : 0;
    if (npersist == paths.size()) return cmd_persist_ls(paths, verify, json);
    if (npersist > 0) {
        fmt::print(stderr, "tierckpt {}: give node stores or persistent directories, not both at once\n", name);
        return 2;
    }
    std::vector<Row> rows;
    int failures = 0;
    for (const auto &p : paths) {
        for (const auto &file : expand(p)) {
            // Read with pread, never mapped: a store its user truncates
            // while this runs gives an error, not SIGBUS.
            auto f = store::StoreReader::open(file);
            if (!f) {
                fmt::print(stderr, "tierckpt {}: {}\n", name, f.status().message());
                ++failures;
                continue;
            }
            if (!f->header_valid()) {
                fmt::print(stderr, "tierckpt {}: {}: no tierckpt store header (empty or not a store)\n", name, file);
                if (verify) ++failures;
                continue;
            }
            for (const auto &s : f->records()) {
                Row r{file, s.slot, s.rec, ""};
                if (verify && (s.rec.state == static_cast<std::uint32_t>(store::SlotState::complete) ||
                               s.rec.state == static_cast<std::uint32_t>(store::SlotState::committed))) {
                    auto damaged = find_damage(*f, s.rec);
                    bool ok = damaged && damaged->ranges.empty();
                    r.check = ok ? "ok" : "corrupt";
                    if (!damaged) {
                        fmt::print(stderr, "tierckpt {}: {}\n", name, damaged.status().message());
                    } else if (!ok) {
                        fmt::print(stderr, "tierckpt {}: {} slot {} (rank {}, version {}): {}\n", name, file, s.slot,
                                   s.rec.rank, s.rec.version, describe_damage(*damaged, s.rec.payload_bytes));
                    }
                    if (!ok) ++failures;
                } else if (verify) {
                    r.check = "-";
                }
                rows.push_back(r);
            }
        }
    }
    if (json) {
        fmt::print("[");
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const auto &r = rows[i];
            fmt::print("{}\n  {{\"store\": {}, \"slot\": {}, \"rank\": {}, \"world\": {}, \"version\": {}, "
                       "\"bytes\": {}, \"offset\": {}, \"kind\": \"{}\", \"state\": \"{}\", \"crc32c\": \"{:08x}\", "
                       "\"piece_bytes\": {}{}}}",
                       i ? "," : "", json_string(r.store), r.slot, r.rec.rank, r.rec.world, r.rec.version,
                       r.rec.payload_bytes, r.rec.offset, r.rec.kind == store::kReplica ? "replica" : "own",
                       store::state_name(static_cast<store::SlotState>(r.rec.state)), r.rec.payload_crc,
                       store::piece_table_count(r.rec) ? std::uint64_t{1} << r.rec.piece_shift : 0,
                       verify ? fmt::format(", \"check\": \"{}\"", r.check) : "");
        }
        fmt::print("{}]\n", rows.empty() ? "" : "\n");
    } else {
        fmt::print("{:<40} {:>4} {:>5} {:>5} {:>8} {:>10} {:<7} {:<9}{}\n", "STORE", "SLOT", "RANK", "WORLD",
                   "VERSION", "BYTES", "KIND", "STATE", verify ? " CHECK" : "");
        for (const auto &r : rows) {
            fmt::print("{:<40} {:>4} {:>5} {:>5} {:>8} {:>10} {:<7} {:<9}{}\n", r.store, r.slot, r.rec.rank,
                       r.rec.world, r.rec.version, format_size(r.rec.payload_bytes),
                       r.rec.kind == store::kReplica ? "replica" : "own",
                       store::state_name(static_cast<store::SlotState>(r.rec.state)), verify ? " " + r.check : "");
        }
    }
    return failures ? 1 : 0;
}

}  // namespace tck::cli
