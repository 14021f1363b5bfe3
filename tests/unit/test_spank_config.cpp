#include <catch2/catch.hpp>

#include <limits>

#include "spank/config.hpp"

using tck::spank::parse_config;

TEST_CASE("plugstack arguments: defaults", "[spank][config]") {
    auto def = parse_config({});
    REQUIRE(def);
    CHECK(def->store_dir == "/dev/shm/tierckpt");
    CHECK(def->max_mem.is_percent);
    CHECK(def->max_mem.percent == 50);
    CHECK(def->default_mem.percent == 10);
    CHECK(def->default_replicas == 1);
    CHECK(def->persist_dirs.empty());
    CHECK(def->keep_seconds == 600);
    CHECK(def->flush_seconds == 600);
    CHECK(def->prefault);
    CHECK(def->log_level == tck::log::Level::warn);
    CHECK_FALSE(def->node_mtbf_s);  // unset: the runtime's default reaches the tasks
}

TEST_CASE("plugstack arguments: every key", "[spank][config]") {
    auto c = parse_config({"store_dir=/dev/hugepages/tck", "max_mem=64G", "default_mem=8G", "default_replicas=2",
                           "persist_dirs=/lustre:/fsx", "keep_seconds=120", "prefault=no", "log=debug",
                           "flush_seconds=0", "node_mtbf=30d"});
    REQUIRE(c);
    CHECK(c->store_dir == "/dev/hugepages/tck");
    CHECK(c->max_mem.bytes == 64ull << 30);
    CHECK(c->default_mem.bytes == 8ull << 30);
    CHECK(c->default_replicas == 2);
    REQUIRE(c->persist_dirs.size() == 2);
    CHECK(c->persist_dirs[1] == "/fsx");
    CHECK(c->keep_seconds == 120);
    CHECK(c->flush_seconds == 0);
    CHECK_FALSE(c->prefault);
    CHECK(c->log_level == tck::log::Level::debug);
    REQUIRE(c->node_mtbf_s);
    CHECK(*c->node_mtbf_s == 30 * 86400.0);
}

TEST_CASE("plugstack arguments: node_mtbf", "[spank][config]") {
    for (auto [arg, want] : {std::pair<const char *, double>{"node_mtbf=264d", 264 * 86400.0},
                             {"node_mtbf=5000h", 5000 * 3600.0},
                             {"node_mtbf=90m", 5400},
                             {"node_mtbf=86400", 86400},
                             {"node_mtbf=0.5", 0.5},
                             {"node_mtbf=inf", std::numeric_limits<double>::infinity()}}) {
        INFO(arg);
        auto c = parse_config({arg});
        REQUIRE(c);
        REQUIRE(c->node_mtbf_s);
        CHECK(*c->node_mtbf_s == want);
    }
    for (const char *bad : {"node_mtbf=0", "node_mtbf=0d", "node_mtbf=-3d", "node_mtbf=", "node_mtbf=soon",
                            "node_mtbf=30 d", "node_mtbf=30w"}) {
        INFO(bad);
        auto c = parse_config({bad});
        REQUIRE_FALSE(c);
        CHECK(c.status().message().rfind(std::string(bad) + ": expected a duration above 0 (30d, 3h, 90m, 1000s; no "
                                                            "suffix: seconds), or inf for no failures",
                                         0) == 0);
    }
    auto twice = parse_config({"node_mtbf=30d", "node_mtbf=40d"});
    REQUIRE_FALSE(twice);
    CHECK(twice.status().message().find("node_mtbf") != std::string::npos);
}

TEST_CASE("plugstack arguments: bad input names the key and the reason", "[spank][config]") {
    struct Case {
        const char *arg, *expect;
    };
    for (auto [arg, expect] : {
             Case{"storedir=/x", "unknown key 'storedir'"},
             Case{"log=loud", "log=loud: expected error, warn, info or debug"},
             Case{"store_dir=relative", "store_dir=relative: not an absolute path"},
             Case{"store_dir=/dev/shm/../etc", "'..' component"},
             Case{"store_dir=/", "store_dir=/: name a directory"},
             Case{"max_mem=lots", "max_mem: invalid size 'lots'"},
             Case{"max_mem=0", "max_mem=0: must be more than 0"},
             Case{"default_replicas=17", "default_replicas=17: out of range"},
             Case{"keep_seconds=-1", "keep_seconds=-1: not a whole number"},
             Case{"flush_seconds=90000", "flush_seconds=90000: out of range"},
             Case{"persist_dirs=/a:rel", "persist_dirs=rel: not an absolute path"},
             Case{"persist_dirs=/a:", "ends with ':'"},
             Case{"prefault=maybe", "prefault=maybe: expected yes or no"},
             Case{"noequals", "not of the form key=value"},
         }) {
        INFO(arg);
        auto r = parse_config({arg});
        REQUIRE_FALSE(r);
        CHECK(r.status().message().find(expect) != std::string::npos);
    }
    auto order = parse_config({"max_mem=10%", "default_mem=20%"});
    REQUIRE_FALSE(order);
    CHECK(order.status().message().find("default_mem (20% of the node's memory) is above max_mem") == 0);
}

TEST_CASE("failure_domains name racks by Slurm host lists", "[spank][config]") {
    using tck::spank::hostlist_contains;
    auto cfg = tck::spank::parse_config({"failure_domains=rackA:n[1-2],login1;rackB:n[3-4,07-09]"});
    REQUIRE(cfg);
    REQUIRE(cfg->failure_domains.size() == 2);
    CHECK(tck::spank::failure_domain_of(*cfg, "n1") == "rackA");
    CHECK(tck::spank::failure_domain_of(*cfg, "login1") == "rackA");
    CHECK(tck::spank::failure_domain_of(*cfg, "n4") == "rackB");
    CHECK(tck::spank::failure_domain_of(*cfg, "n08") == "rackB");  // zero-padded range
    CHECK(tck::spank::failure_domain_of(*cfg, "n8").empty());      // not n08
    CHECK(tck::spank::failure_domain_of(*cfg, "n5").empty());
    CHECK(tck::spank::failure_domain_of(*cfg, "n12").empty());
    CHECK(*hostlist_contains("gpu[10-12]x", "gpu11x"));
    CHECK_FALSE(*hostlist_contains("gpu[10-12]x", "gpu11"));
}

TEST_CASE("a bad failure_domains value names the problem and the form", "[spank][config]") {
    for (const char *bad : {"failure_domains=rackA", "failure_domains=:n1", "failure_domains=rack A:n1",
                            "failure_domains=a:n[1-2", "failure_domains=a:n[2-1]", "failure_domains=a:n[x]",
                            "failure_domains=a:n1;a:n2", "failure_domains=a:", "failure_domains=a:n[1]m[2]"}) {
        auto cfg = tck::spank::parse_config({bad});
        INFO(bad);
        REQUIRE_FALSE(cfg);
        CHECK(cfg.status().message().find("failure_domains") != std::string::npos);
    }
}
