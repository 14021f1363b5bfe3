#include "topology.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <map>

#include "common/parse.hpp"
#include "common/small_file.hpp"

namespace tck::spank {

namespace {

constexpr std::string_view kPrefix = "failure_domains=topology: ";

struct Line {
    std::size_t number;  // of its first physical line
    std::string text;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Slurm's logical lines (parse_config.c, _get_next_line): per physical
// line, a "#" after an even number of backslashes starts a comment; an odd
// number of backslashes at the end (trailing blanks allowed) joins the next
// line, with nothing in between; then every "\c" of the whole becomes "c".
std::vector<Line> logical_lines(std::string_view text) {
    std::vector<Line> out;
    std::string joined;
    std::size_t number = 0, first = 0, pos = 0;
    bool continued = false;
    auto finish = [&] {
        std::string plain;
        for (std::size_t i = 0; i < joined.size(); ++i) {
            if (joined[i] == '\\' && ++i == joined.size()) break;
            plain += joined[i];
        }
        out.push_back({first, std::move(plain)});
        joined.clear();
    };
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        std::string_view phys = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        ++number;
        if (!continued) first = number;
        std::size_t backslashes = 0;
        for (std::size_t i = 0; i < phys.size(); ++i) {
            if (phys[i] == '#' && backslashes % 2 == 0) {
                phys = phys.substr(0, i);
                break;
            }
            backslashes = phys[i] == '\\' ? backslashes + 1 : 0;
        }
        std::size_t end = phys.size();
        while (end > 0 && is_space(phys[end - 1])) --end;
        std::size_t run = end;
        while (run > 0 && phys[run - 1] == '\\') --run;
        continued = (end - run) % 2 == 1;
        joined.append(continued ? phys.substr(0, end - 1) : phys);
        if (!continued) finish();
    }
    if (continued) finish();  // the file ends with a continued line
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// A token for a message: the file is the admin's, but keep lines short.
std::string shown(std::string_view s) {
    return s.size() <= 80 ? std::string(s) : std::string(s.substr(0, 77)) + "...";
}

struct Pair {
    std::string key;  // lower case
    std::string as_written;
    std::string value;
};

// KEY=VALUE pairs separated by blanks; blanks may surround "="; a value is
// "quoted" (blanks allowed) or runs to the next blank.
Result<std::vector<Pair>> split_pairs(std::string_view line) {
    std::vector<Pair> out;
    std::size_t i = 0;
    auto skip = [&] {
        while (i < line.size() && is_space(line[i])) ++i;
    };
    for (skip(); i < line.size(); skip()) {
        std::size_t k = i;
        auto key_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; };
        while (i < line.size() && key_char(line[i])) ++i;
        std::string_view key = line.substr(k, i - k);
        skip();
        if (key.empty() || i == line.size() || line[i] != '=') {
            std::string_view rest = line.substr(k);
            if (lower(rest.substr(0, 8)) == "include " || lower(rest.substr(0, 8)) == "include\t") {
                return error(TIERCKPT_ERR_INVALID,
                             "an Include line: tierckpt reads topology.conf alone; write those switches into this "
                             "file");
            }
            return error(TIERCKPT_ERR_INVALID, "'{}' is not KEY=VALUE: write e.g. SwitchName=s1 Nodes=n[1-16]",
                         shown(rest.substr(0, rest.find_first_of(" \t"))));
        }
        ++i;
        skip();
        std::string value;
        if (i < line.size() && line[i] == '"') {
            std::size_t close = line.find('"', i + 1);
            if (close == std::string_view::npos) {
                return error(TIERCKPT_ERR_INVALID, "the value of {} has no closing '\"'", key);
            }
            value = line.substr(i + 1, close - i - 1);
            i = close + 1;
        } else {
            std::size_t v = i;
            while (i < line.size() && !is_space(line[i])) ++i;
            value = line.substr(v, i - v);
        }
        if (value.empty()) return error(TIERCKPT_ERR_INVALID, "{}= has no value", key);
        out.push_back({lower(key), std::string(key), std::move(value)});
    }
    return out;
}

// One line of topology.conf: a switch, a block, or BlockSizes.
struct Entry {
    enum Kind { switch_, block, block_sizes } kind;
    std::string name, nodes, switches;
};

Result<Entry> parse_entry(const std::vector<Pair> &pairs) {
    static const std::map<std::string, std::pair<Entry::Kind, const char *>> kinds = {
        {"switchname", {Entry::switch_, "SwitchName, Nodes, Switches, LinkSpeed"}},
        {"blockname", {Entry::block, "BlockName, Nodes"}},
        {"blocksizes", {Entry::block_sizes, "BlockSizes"}},
    };
    auto kind = kinds.find(pairs.front().key);
    if (kind == kinds.end()) {
        return error(TIERCKPT_ERR_INVALID,
                     "a line starts with SwitchName=, BlockName= or BlockSizes=, not {}=: move that key after the name "
                     "or remove it",
                     shown(pairs.front().as_written));
    }
    Entry e{kind->second.first, pairs.front().value, {}, {}};
    std::map<std::string, std::string> seen;
    for (const auto &p : pairs) {
        bool known = p.key == pairs.front().key ||
                     (e.kind == Entry::switch_ && (p.key == "nodes" || p.key == "switches" || p.key == "linkspeed")) ||
                     (e.kind == Entry::block && p.key == "nodes");
        if (!known) {
            return error(TIERCKPT_ERR_INVALID, "unknown key '{}' on a {} line (known keys: {}): fix or remove it",
                         shown(p.as_written), pairs.front().as_written, kind->second.second);
        }
        if (!seen.emplace(p.key, p.value).second) {
            return error(TIERCKPT_ERR_INVALID, "{} is given twice: give it once", p.as_written);
        }
        if (p.key == "nodes" || p.key == "switches") {
            auto ok = hostlist_contains(p.value, "");
            if (!ok) return error(TIERCKPT_ERR_INVALID, "{}=: {}", p.as_written, ok.status().message());
            (p.key == "nodes" ? e.nodes : e.switches) = p.value;
        }
    }
    if (e.kind == Entry::switch_ && !e.nodes.empty() && !e.switches.empty()) {
        return error(TIERCKPT_ERR_INVALID,
                     "switch {} has both Nodes= and Switches=: a switch has nodes (a leaf) or switches, not both",
                     e.name);
    }
    if (e.kind != Entry::block_sizes && e.nodes.empty() && e.switches.empty()) {
        return error(TIERCKPT_ERR_INVALID, "{} {} has no Nodes={}: name its children", pairs.front().as_written,
                     e.name, e.kind == Entry::switch_ ? " or Switches=" : "");
    }
    if (e.kind != Entry::block_sizes && !e.nodes.empty() && !valid_domain_name(e.name)) {
        return error(TIERCKPT_ERR_INVALID,
                     "{} '{}' cannot be a failure domain: name it with up to 64 letters, digits, '_', '.' or '-'",
                     pairs.front().as_written, shown(e.name));
    }
    return e;
}

}  // namespace

Result<std::vector<Config::Domain>> parse_topology(std::string_view text, std::string_view file) {
    std::vector<Config::Domain> domains;
    std::map<std::string, std::size_t> names;  // switch or block name -> its line
    for (const auto &line : logical_lines(text)) {
        auto at = [&](const Status &why) {
            return error(TIERCKPT_ERR_INVALID, "{}{} line {}: {}", kPrefix, file, line.number, why.message());
        };
        auto pairs = split_pairs(line.text);
        if (!pairs) return at(pairs.status());
        if (pairs->empty()) continue;  // blank or comment
        auto entry = parse_entry(*pairs);
        if (!entry) return at(entry.status());
        if (entry->kind == Entry::block_sizes) continue;
        auto [it, fresh] = names.emplace(entry->name, line.number);
        if (!fresh) {
            return at(error(TIERCKPT_ERR_INVALID,
                            "{} is named again (first on line {}): give each switch or block one line", entry->name,
                            it->second));
        }
        if (!entry->nodes.empty()) domains.push_back({entry->name, entry->nodes, line.number});
    }
    if (domains.empty()) {
        return error(TIERCKPT_ERR_INVALID,
                     "{}{} names no leaf switch (SwitchName=NAME Nodes=HOSTLIST) or block (BlockName=NAME "
                     "Nodes=HOSTLIST): add them, or name failure domains in plugstack.conf",
                     kPrefix, file);
    }
    return domains;
}

Result<std::string> topology_conf_path(const Config &cfg, const char *slurm_conf) {
    if (!cfg.topology_conf.empty()) return cfg.topology_conf;
    std::string conf = slurm_conf != nullptr && *slurm_conf != '\0' ? slurm_conf : kDefaultSlurmConf;
    auto p = parse_abs_path("SLURM_CONF", conf);
    if (!p) {
        return error(TIERCKPT_ERR_INVALID, "{}cannot find topology.conf beside slurm.conf: {}; or name the file with "
                     "topology_conf= in plugstack.conf", kPrefix, p.status().message());
    }
    return p->substr(0, p->rfind('/')) + "/topology.conf";
}

// The file is followed if it is a link (no O_NOFOLLOW): configuration
// management often links /etc/slurm's files to a shared copy, and Slurm
// itself follows them. Its path comes from root alone (plugstack.conf, or
// the SLURM_CONF slurmd gives slurmstepd), and what is checked is the file
// actually opened (fstat of the descriptor): a regular file (O_NONBLOCK: a
// FIFO cannot hang slurmstepd) of at most kMaxTopologyBytes, root's (or
// this process's), not writable by everyone.
Result<std::vector<Config::Domain>> read_topology(const std::string &path) {
    struct stat st {};
    auto text = read_small_file_at(AT_FDCWD, path, path, kMaxTopologyBytes, 0, &st);
    if (!text) {
        if (text.status().code() == TIERCKPT_ERR_NOT_FOUND) {
            return error(TIERCKPT_ERR_NOT_FOUND,
                         "{}{} does not exist: write it (topology.conf(5)), or name the file with topology_conf= in "
                         "plugstack.conf",
                         kPrefix, path);
        }
        return error(text.status().code(), "{}{}", kPrefix, text.status().message());
    }
    if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
        return error(TIERCKPT_ERR_INVALID, "{}{} belongs to uid {}, not root: chown root {}", kPrefix, path,
                     st.st_uid, path);
    }
    if (st.st_mode & S_IWOTH) {
        return error(TIERCKPT_ERR_INVALID, "{}{} is writable by every user: chmod o-w {}", kPrefix, path, path);
    }
    return parse_topology(*text, path);
}

Result<std::string> topology_domain_of(const std::vector<Config::Domain> &domains, std::string_view file,
                                       std::string_view host) {
    const Config::Domain *found = nullptr;
    for (const auto &d : domains) {
        auto in = hostlist_contains(d.hosts, host);
        if (!in || !*in) continue;
        if (found) {
            return error(TIERCKPT_ERR_INVALID,
                         "{}{} line {}: node {} is in {} (line {}) and in {}: a node belongs to one leaf switch or "
                         "block; remove it from one Nodes= list",
                         kPrefix, file, d.line, host, found->name, found->line, d.name);
        }
        found = &d;
    }
    return found ? found->name : std::string();
}

Result<std::string> node_failure_domain(const Config &cfg, std::string_view host, const char *slurm_conf) {
    if (!cfg.topology_domains) return failure_domain_of(cfg, host);
    auto path = topology_conf_path(cfg, slurm_conf);
    if (!path) return path.status();
    auto domains = read_topology(*path);
    if (!domains) return domains.status();
    return topology_domain_of(*domains, *path, host);
}

}  // namespace tck::spank
