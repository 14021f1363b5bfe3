// failure_domains=topology: Slurm's topology.conf as failure domains.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "spank/topology.hpp"

using tck::spank::Config;
using tck::spank::parse_topology;
using tck::spank::topology_domain_of;

namespace {

std::string domain(const std::vector<Config::Domain> &domains, const char *host) {
    auto d = topology_domain_of(domains, "topology.conf", host);
    REQUIRE(d);
    return *d;
}

struct TmpDir {
    std::string path;
    TmpDir() {
        char tmpl[] = "/tmp/tck-topology-XXXXXX";
        REQUIRE(::mkdtemp(tmpl));
        path = tmpl;
    }
    ~TmpDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string write(const std::string &name, const std::string &text) {
        std::string p = path + "/" + name;
        std::ofstream(p) << text;
        return p;
    }
};

}  // namespace

TEST_CASE("topology.conf: leaf switches are the domains, upper levels are not", "[spank][topology]") {
    auto t = parse_topology("# the fabric\n"
                            "\n"
                            "SwitchName=s1 Nodes=n[1-2]   # rack 1\n"
                            "switchname = s2  NODES=\"n[3-4],login1\" LinkSpeed=100\n"
                            "SwitchName=top Switches=s[1-2]\n"
                            "SwitchName=s3 \\\n"
                            "  Nodes=gpu[07-09]\n"
                            "SwitchName=s\\4 Nodes=x1\n",
                            "topology.conf");
    REQUIRE(t);
    REQUIRE(t->size() == 4);
    CHECK((*t)[0].name == "s1");
    CHECK((*t)[0].line == 3);
    CHECK((*t)[1].hosts == "n[3-4],login1");
    CHECK((*t)[2].name == "s3");
    CHECK((*t)[2].line == 6);  // a continued line counts from its first line
    CHECK((*t)[3].name == "s4");   // "\4" is "4"
    CHECK(domain(*t, "n1") == "s1");
    CHECK(domain(*t, "n4") == "s2");
    CHECK(domain(*t, "login1") == "s2");
    CHECK(domain(*t, "gpu08") == "s3");
    CHECK(domain(*t, "n5").empty());  // in no leaf: a domain of its own
    CHECK(domain(*t, "top").empty());
}

TEST_CASE("topology.conf: blocks are domains; BlockSizes is not", "[spank][topology]") {
    auto t = parse_topology("BlockName=b1 Nodes=n[1-4]\nBlockName=b2 Nodes=n[5-8]\nBlockSizes=4,8\r\n",
                            "topology.conf");
    REQUIRE(t);
    REQUIRE(t->size() == 2);
    CHECK(domain(*t, "n4") == "b1");
    CHECK(domain(*t, "n5") == "b2");
}

TEST_CASE("topology.conf: a bad line names the file, the line and the fix", "[spank][topology]") {
    struct Case {
        const char *text, *expect;
    };
    for (auto [text, expect] : {
             Case{"SwitchName=s1 Nodes=n[1-2\n", "/etc/t.conf line 1: Nodes=: host list 'n[1-2': unbalanced ["},
             Case{"SwitchName=s1 Nodes=n1\nSwitchName=s2 Node=n2\n",
                  "line 2: unknown key 'Node' on a SwitchName line (known keys: SwitchName, Nodes, Switches, "
                  "LinkSpeed)"},
             Case{"Nodes=n1 SwitchName=s1\n", "line 1: a line starts with SwitchName=, BlockName= or BlockSizes="},
             Case{"\n\nSwitchName=s1\n", "line 3: SwitchName s1 has no Nodes= or Switches="},
             Case{"SwitchName=s1 Nodes=n1 Switches=s2\n", "switch s1 has both Nodes= and Switches="},
             Case{"SwitchName=s1 Nodes=n1\nSwitchName=s1 Nodes=n2\n", "line 2: s1 is named again (first on line 1)"},
             Case{"SwitchName=s1 Nodes=n1 nodes=n2\n", "nodes is given twice"},
             Case{"SwitchName=s1 Nodes=\n", "Nodes= has no value"},
             Case{"SwitchName=s1 n1\n", "'n1' is not KEY=VALUE"},
             Case{"SwitchName=s1 Nodes=\"n1\n", "the value of Nodes has no closing '\"'"},
             Case{"Include /etc/slurm/more.conf\n", "line 1: an Include line"},
             Case{"BlockName=b1 Switches=s1\n", "unknown key 'Switches' on a BlockName line"},
             Case{"SwitchName=rack/1 Nodes=n1\n", "'rack/1' cannot be a failure domain"},
             Case{"SwitchName=s\\#4 Nodes=n1\n", "'s#4' cannot be a failure domain"},  // "\#" is no comment
             Case{"# nothing\nSwitchName=top Switches=s1\n", "/etc/t.conf names no leaf switch"},
             Case{"", "names no leaf switch"},
         }) {
        INFO(text);
        auto t = parse_topology(text, "/etc/t.conf");
        REQUIRE_FALSE(t);
        CHECK(t.status().message().find(expect) != std::string::npos);
        CHECK(t.status().message().rfind("failure_domains=topology: /etc/t.conf", 0) == 0);
    }
}

TEST_CASE("topology.conf: a node in two leaf switches is an error for that node", "[spank][topology]") {
    auto t = parse_topology("SwitchName=s1 Nodes=n[1-3]\nSwitchName=s2 Nodes=n[3-4]\n", "/etc/t.conf");
    REQUIRE(t);
    CHECK(domain(*t, "n2") == "s1");
    auto d = topology_domain_of(*t, "/etc/t.conf", "n3");
    REQUIRE_FALSE(d);
    CHECK(d.status().message() ==
          "failure_domains=topology: /etc/t.conf line 2: node n3 is in s1 (line 1) and in s2: a node belongs to one "
          "leaf switch or block; remove it from one Nodes= list");
}

TEST_CASE("topology.conf: where it is read from", "[spank][topology]") {
    using tck::spank::topology_conf_path;
    Config cfg;
    CHECK(*topology_conf_path(cfg, "/etc/slurm-llnl/slurm.conf") == "/etc/slurm-llnl/topology.conf");
    CHECK(*topology_conf_path(cfg, nullptr) == "/etc/slurm/topology.conf");
    CHECK(*topology_conf_path(cfg, "") == "/etc/slurm/topology.conf");
    CHECK(*topology_conf_path(cfg, "/slurm.conf") == "/topology.conf");
    auto rel = topology_conf_path(cfg, "slurm.conf");
    REQUIRE_FALSE(rel);
    CHECK(rel.status().message().find("SLURM_CONF=slurm.conf: not an absolute path") != std::string::npos);
    cfg.topology_conf = "/opt/fabric/topo.conf";
    CHECK(*topology_conf_path(cfg, "/etc/slurm/slurm.conf") == "/opt/fabric/topo.conf");
}

TEST_CASE("topology.conf: reading the file", "[spank][topology]") {
    using tck::spank::read_topology;
    TmpDir dir;
    auto good = dir.write("topology.conf", "SwitchName=s1 Nodes=n[1-2]\nSwitchName=s2 Nodes=n[3-4]\n");
    auto t = read_topology(good);
    REQUIRE(t);
    CHECK(t->size() == 2);

    auto missing = read_topology(dir.path + "/none.conf");
    REQUIRE_FALSE(missing);
    CHECK(missing.status().message() == "failure_domains=topology: " + dir.path +
                                            "/none.conf does not exist: write it (topology.conf(5)), or name the "
                                            "file with topology_conf= in plugstack.conf");

    auto a_dir = read_topology(dir.path);
    REQUIRE_FALSE(a_dir);
    CHECK(a_dir.status().message().find("is not a regular file") != std::string::npos);

    REQUIRE(::mkfifo((dir.path + "/fifo").c_str(), 0600) == 0);
    auto fifo = read_topology(dir.path + "/fifo");  // returns at once: no writer is waited for
    REQUIRE_FALSE(fifo);
    CHECK(fifo.status().message().find("is not a regular file") != std::string::npos);

    REQUIRE(::chmod(good.c_str(), 0666) == 0);
    auto open_to_all = read_topology(good);
    REQUIRE_FALSE(open_to_all);
    CHECK(open_to_all.status().message().find("is writable by every user: chmod o-w") != std::string::npos);
    REQUIRE(::chmod(good.c_str(), 0644) == 0);

    // A link is followed (configuration management links config files).
    REQUIRE(::symlink(good.c_str(), (dir.path + "/link.conf").c_str()) == 0);
    CHECK(read_topology(dir.path + "/link.conf"));

    auto bad = read_topology(dir.write("bad.conf", "SwitchName=s1 Nodes=n1\n# fine\nSwitchName=s2 Nodez=n2\n"));
    REQUIRE_FALSE(bad);
    CHECK(bad.status().message().find(dir.path + "/bad.conf line 3: unknown key 'Nodez'") != std::string::npos);
}

TEST_CASE("topology.conf: the node's domain from plugstack.conf's settings", "[spank][topology]") {
    using tck::spank::node_failure_domain;
    using tck::spank::parse_config;
    TmpDir dir;
    auto file = dir.write("topology.conf", "SwitchName=s1 Nodes=n[1-2]\nSwitchName=s2 Nodes=n[3-4]\n"
                                           "SwitchName=top Switches=s[1-2]\n");
    auto cfg = parse_config({"failure_domains=topology", "topology_conf=" + file});
    REQUIRE(cfg);
    CHECK(cfg->topology_domains);
    CHECK(*node_failure_domain(*cfg, "n3", nullptr) == "s2");
    CHECK(node_failure_domain(*cfg, "n9", nullptr)->empty());
    auto beside = parse_config({"failure_domains=topology"});
    REQUIRE(beside);
    CHECK(*node_failure_domain(*beside, "n1", (dir.path + "/slurm.conf").c_str()) == "s1");
    auto plugstack = parse_config({"failure_domains=left:n[1-2];right:n[3-4]"});
    REQUIRE(plugstack);
    CHECK(*node_failure_domain(*plugstack, "n3", "/nowhere/slurm.conf") == "right");  // no file read

    for (auto [arg, expect] : {
             std::pair<const char *, const char *>{"topology_conf=/etc/slurm/topology.conf",
                                                   "topology_conf=/etc/slurm/topology.conf is read only with "
                                                   "failure_domains=topology"},
             {"failure_domains=Topology", "failure_domains: 'Topology': give NAME:HOSTLIST"},
         }) {
        auto bad = parse_config({arg});
        REQUIRE_FALSE(bad);
        CHECK(bad.status().message().find(expect) != std::string::npos);
    }
    auto rel = parse_config({"failure_domains=topology", "topology_conf=topology.conf"});
    REQUIRE_FALSE(rel);
    CHECK(rel.status().message().find("topology_conf=topology.conf: not an absolute path") != std::string::npos);
}
