#include <catch2/catch.hpp>

#include <limits>
#include <string>
#include <tuple>

#include "common/parse.hpp"
#include "spank/options.hpp"

using namespace tck::spank;

namespace {
UserOptions apply_ok(std::initializer_list<std::pair<Opt, const char *>> opts, const Config &cfg = {}) {
    UserOptions u;
    for (auto [o, arg] : opts) {
        auto st = apply_option(o, arg, cfg, u);
        INFO(st.message());
        REQUIRE(st.is_ok());
    }
    return u;
}
std::string apply_err(Opt o, const char *arg, const Config &cfg = {}) {
    UserOptions u;
    auto st = apply_option(o, arg, cfg, u);
    REQUIRE_FALSE(st.is_ok());
    return st.message();
}
}  // namespace

TEST_CASE("--ckpt-mem turns tierckpt on; defaults come from the admin", "[spank][options]") {
    Config cfg;
    auto off = settle(UserOptions{}, cfg);
    REQUIRE(off);

    auto u = apply_ok({{Opt::mem, "64M"}});
    CHECK(u.enabled);
    auto s = settle(u, cfg);
    REQUIRE(s);
    CHECK(s->mem.bytes == 64ull << 20);
    CHECK(s->replicas == 1);
    CHECK(s->persist_dir.empty());
    CHECK(s->persist_every == 0);

    auto bare = settle(apply_ok({{Opt::mem, nullptr}}), cfg);
    REQUIRE(bare);
    CHECK(bare->mem.is_percent);
    CHECK(bare->mem.percent == cfg.default_mem.percent);

    auto full = settle(apply_ok({{Opt::mem, "25%"}, {Opt::replicas, "2"}, {Opt::persist, "/lustre/run1"}}), cfg);
    REQUIRE(full);
    CHECK(full->replicas == 2);
    CHECK(full->persist_dir == "/lustre/run1");
    CHECK(full->persist_every == kDefaultPersistEvery);
    CHECK(full->persist_keep == kDefaultPersistKeep);
    CHECK(s->persist_keep == 0);

    auto kept = settle(apply_ok({{Opt::mem, "1G"}, {Opt::persist, "/lustre/run1"}, {Opt::persist_keep, "7"}}), cfg);
    REQUIRE(kept);
    CHECK(kept->persist_keep == 7u);
}

TEST_CASE("a later value of an option replaces an earlier one", "[spank][options]") {
    auto u = apply_ok({{Opt::mem, "1G"}, {Opt::mem, "2G"}, {Opt::replicas, "3"}, {Opt::replicas, "0"}});
    CHECK(u.mem->bytes == 2ull << 30);
    CHECK(*u.replicas == 0u);
}

TEST_CASE("bad option values name the option, the value and the form", "[spank][options]") {
    for (const char *bad : {"abc", "-5G", "0", "1e99", "99999999T", "", "5 G", "0%", "150%"}) {
        INFO("--ckpt-mem=" << bad);
        std::string msg = apply_err(Opt::mem, bad);
        CHECK(msg.rfind("--ckpt-mem", 0) == 0);
        CHECK(msg.find(std::string("'") + bad + "'") != std::string::npos);
        CHECK(msg.find("expected") != std::string::npos);
    }
    for (const char *bad : {"-1", "17", "two", "", "1.0"}) {
        INFO("--ckpt-replicas=" << bad);
        std::string msg = apply_err(Opt::replicas, bad);
        CHECK(msg.rfind(std::string("--ckpt-replicas=") + bad + ":", 0) == 0);
        CHECK(msg.find("from 0 to 16") != std::string::npos);
    }
    for (const char *bad : {"0", "-3", "x"}) {
        INFO("--ckpt-persist-every=" << bad);
        CHECK(apply_err(Opt::persist_every, bad).find("from 1 to") != std::string::npos);
        CHECK(apply_err(Opt::persist_every, bad).find("or auto") != std::string::npos);
    }
    for (const char *bad : {"0", "1001", "x", ""}) {
        INFO("--ckpt-persist-keep=" << bad);
        std::string msg = apply_err(Opt::persist_keep, bad);
        CHECK(msg.rfind(std::string("--ckpt-persist-keep=") + bad + ":", 0) == 0);
        CHECK(msg.find("from 1 to 1000") != std::string::npos);
    }
    CHECK(apply_err(Opt::transport, "verbs") == "--ckpt-transport=verbs: expected ucx, ofi or auto");
    for (const char *bad : {"relative", "/lustre/../etc", "/a/./b", ""}) {
        INFO("--ckpt-persist=" << bad);
        CHECK(apply_err(Opt::persist, bad).rfind("--ckpt-persist=", 0) == 0);
    }
}

TEST_CASE("--ckpt-persist must be below a directory the admin allows", "[spank][options]") {
    auto cfg = parse_config({"persist_dirs=/lustre:/fsx/ckpt"});
    REQUIRE(cfg);
    apply_ok({{Opt::persist, "/lustre/me/run"}}, *cfg);
    apply_ok({{Opt::persist, "/fsx/ckpt"}}, *cfg);
    std::string msg = apply_err(Opt::persist, "/lustre2/me", *cfg);
    CHECK(msg.find("use a directory under: /lustre, /fsx/ckpt") != std::string::npos);
    CHECK(apply_err(Opt::persist, "/fsx/other", *cfg).find("not below") != std::string::npos);
    // Without persist_dirs any clean absolute path is accepted.
    apply_ok({{Opt::persist, "/home/me/ckpt"}});
}

TEST_CASE("options that need --ckpt-mem or --ckpt-persist say so", "[spank][options]") {
    Config cfg;
    auto r = settle(apply_ok({{Opt::replicas, "2"}}), cfg);
    REQUIRE_FALSE(r);
    CHECK(r.status().message().find("--ckpt-replicas is given without --ckpt-mem") == 0);
    auto p = settle(apply_ok({{Opt::mem, "1G"}, {Opt::persist_every, "5"}}), cfg);
    REQUIRE_FALSE(p);
    CHECK(p.status().message().find("needs --ckpt-persist=DIR") != std::string::npos);
    auto k = settle(apply_ok({{Opt::mem, "1G"}, {Opt::persist_keep, "2"}}), cfg);
    REQUIRE_FALSE(k);
    CHECK(k.status().message().find("--ckpt-persist-keep=2 needs --ckpt-persist=DIR") == 0);
}

TEST_CASE("--ckpt-persist-every=auto: the schedule chooses the flush cadence", "[spank][options]") {
    Config cfg;
    auto a = settle(apply_ok({{Opt::mem, "1G"}, {Opt::persist, "/lustre/x"}, {Opt::persist_every, "auto"}}), cfg);
    REQUIRE(a);
    CHECK(a->persist_every_auto);
    auto n = settle(apply_ok({{Opt::mem, "1G"}, {Opt::persist, "/lustre/x"}, {Opt::persist_every, "7"}}), cfg);
    REQUIRE(n);
    CHECK_FALSE(n->persist_every_auto);
    CHECK(n->persist_every == 7);
    auto lone = settle(apply_ok({{Opt::mem, "1G"}, {Opt::persist_every, "auto"}}), cfg);
    REQUIRE_FALSE(lone);
    CHECK(lone.status().message().find("--ckpt-persist-every=auto needs --ckpt-persist=DIR") == 0);
}

TEST_CASE("the admin's cap: early when decidable, per node otherwise", "[spank][options]") {
    auto cfg = parse_config({"max_mem=1G", "default_mem=512M"});
    REQUIRE(cfg);
    auto over = settle(apply_ok({{Opt::mem, "2G"}}), *cfg);
    REQUIRE_FALSE(over);
    CHECK(over.status().message().find("above the admin's cap max_mem (1 GiB)") != std::string::npos);

    // 50% is not decidable without the node's memory; on a 4 GiB node it is over.
    auto mixed = settle(apply_ok({{Opt::mem, "50%"}}), *cfg);
    REQUIRE(mixed);
    auto on4g = store_bytes(*mixed, *cfg, 4ull << 30);
    REQUIRE_FALSE(on4g);
    CHECK(on4g.status().message().find("2 GiB on this node, above the admin's cap") != std::string::npos);
    auto on1g = store_bytes(*mixed, *cfg, 1ull << 30);
    REQUIRE(on1g);
    CHECK(*on1g == 512ull << 20);

    auto pct = parse_config({"max_mem=30%"});
    REQUIRE(pct);
    auto over_pct = settle(apply_ok({{Opt::mem, "40%"}}), *pct);
    REQUIRE_FALSE(over_pct);
    CHECK(over_pct.status().message().find("max_mem (30% of the node's memory)") != std::string::npos);
    auto abs_on_node = settle(apply_ok({{Opt::mem, "4G"}}), *pct);
    REQUIRE(abs_on_node);
    CHECK_FALSE(store_bytes(*abs_on_node, *pct, 8ull << 30));   // 4G > 30% of 8G
    CHECK(*store_bytes(*abs_on_node, *pct, 16ull << 30) == 4ull << 30);
}

TEST_CASE("the checkpoint schedule's options reach the tasks in one plain form", "[spank][options]") {
    Config cfg;
    auto none = settle(apply_ok({{Opt::mem, "1G"}}), cfg);
    REQUIRE(none);
    // Unset: no variable, so one the user exported passes and else the
    // runtime's defaults hold.
    CHECK(none->ckpt_interval.empty());
    CHECK(none->node_mtbf.empty());
    CHECK(none->max_overhead.empty());

    struct Case {
        Opt opt;
        const char *arg, *want;
    };
    for (auto [opt, arg, want] : {
             Case{Opt::ckpt_interval, "auto", "auto"},
             Case{Opt::ckpt_interval, "50", "50"},
             Case{Opt::ckpt_interval, "0050", "50"},
             Case{Opt::ckpt_interval, "1000000000", "1000000000"},
             Case{Opt::ckpt_interval, "10m", "600s"},
             Case{Opt::ckpt_interval, "90s", "90s"},
             Case{Opt::ckpt_interval, "1.5h", "5400s"},
             Case{Opt::ckpt_interval, "0.5S", "0.5s"},
             Case{Opt::ckpt_interval, "2d", "172800s"},
             Case{Opt::ckpt_interval, "366d", "31622400s"},
             Case{Opt::node_mtbf, "264d", "22809600"},
             Case{Opt::node_mtbf, "30d", "2592000"},
             Case{Opt::node_mtbf, "5000h", "18000000"},
             Case{Opt::node_mtbf, "3600", "3600"},
             Case{Opt::node_mtbf, "1.5", "1.5"},
             Case{Opt::node_mtbf, "inf", "inf"},
             Case{Opt::node_mtbf, "none", "inf"},
             Case{Opt::max_overhead, "2", "2"},
             Case{Opt::max_overhead, "2%", "2"},
             Case{Opt::max_overhead, "2.50", "2.5"},
             Case{Opt::max_overhead, "7", "7"},
             Case{Opt::max_overhead, "0.01%", "0.01"},
             Case{Opt::max_overhead, "99.9", "99.9"},
         }) {
        INFO(static_cast<int>(opt) << " " << arg);
        auto s = settle(apply_ok({{Opt::mem, "1G"}, {opt, arg}}), cfg);
        REQUIRE(s);
        const std::string &got = opt == Opt::ckpt_interval ? s->ckpt_interval
                                 : opt == Opt::node_mtbf   ? s->node_mtbf
                                                           : s->max_overhead;
        CHECK(got == want);
    }

    // What the plugin hands over reads back, with the runtime's parsers, as
    // what the user asked for.
    auto iv = tck::parse_ckpt_interval("TIERCKPT_CKPT_INTERVAL", "600s");
    REQUIRE(iv);
    CHECK(iv->kind == tck::CkptInterval::Kind::duration);
    CHECK(iv->seconds == 600);
    auto steps = tck::parse_ckpt_interval("TIERCKPT_CKPT_INTERVAL", "50");
    REQUIRE(steps);
    CHECK(steps->kind == tck::CkptInterval::Kind::steps);
    for (double v : {22809600.0, 1.5, 1e-7, 1e20, 123456.789}) {
        INFO(v);
        auto d = tck::parse_duration(plain_number(v));
        REQUIRE(d);
        CHECK(*d == v);
        auto sd = tck::parse_ckpt_interval("x", plain_number(v) + "s");
        if (v <= 366 * 86400.0) CHECK((sd && sd->seconds == v));
    }
    CHECK(plain_number(22809600) == "22809600");
    CHECK(plain_number(std::numeric_limits<double>::infinity()) == "inf");
    auto pct = tck::parse_percent("x", "2.5");
    REQUIRE(pct);
    CHECK(*pct == 0.025);

    // A later value replaces an earlier one, as for every option.
    auto again = settle(apply_ok({{Opt::mem, "1G"}, {Opt::ckpt_interval, "10m"}, {Opt::ckpt_interval, "auto"}}), cfg);
    REQUIRE(again);
    CHECK(again->ckpt_interval == "auto");
}

TEST_CASE("bad schedule values name the option, the value and the accepted forms", "[spank][options]") {
    for (const char *bad : {"", "0", "-5", "1e3", "10x", "10 m", "0s", "-1m", "inf", "none", "367d", "1000000001",
                            "abc", "auto ", "AUTO", "1.5"}) {
        INFO("--ckpt-interval=" << bad);
        std::string msg = apply_err(Opt::ckpt_interval, bad);
        CHECK(msg.rfind(std::string("--ckpt-interval=") + bad + ": expected auto, a number of steps", 0) == 0);
        CHECK(msg.find("a duration with its unit") != std::string::npos);
    }
    for (const char *bad : {"", "0", "0d", "-1d", "abc", "10x", "1 d", "infinity"}) {
        INFO("--ckpt-node-mtbf=" << bad);
        std::string msg = apply_err(Opt::node_mtbf, bad);
        CHECK(msg.rfind(std::string("--ckpt-node-mtbf=") + bad + ": expected a duration above 0", 0) == 0);
        CHECK(msg.find("or inf") != std::string::npos);
    }
    for (const char *bad : {"", "0", "0%", "100", "100%", "-2", "abc", "2%%", "nan", "inf", "%"}) {
        INFO("--ckpt-max-overhead=" << bad);
        std::string msg = apply_err(Opt::max_overhead, bad);
        CHECK(msg.rfind(std::string("--ckpt-max-overhead=") + bad + ": expected a percentage above 0 and below 100",
                        0) == 0);
    }
    // A bad value leaves an earlier good one in place.
    UserOptions u;
    REQUIRE(apply_option(Opt::ckpt_interval, "100", Config{}, u).is_ok());
    REQUIRE_FALSE(apply_option(Opt::ckpt_interval, "0", Config{}, u).is_ok());
    CHECK(*u.ckpt_interval == "100");
}

TEST_CASE("--ckpt-min-nodes takes a whole number of nodes, 1 or more", "[spank][options]") {
    CHECK(*apply_ok({{Opt::mem, "1G"}, {Opt::min_nodes, "2"}}).min_nodes == 2u);
    CHECK(settle(apply_ok({{Opt::mem, "1G"}, {Opt::min_nodes, "2"}}), Config{}));
    for (const char *bad : {"0", "-1", "two", "2.5", "100001", ""}) {
        INFO(bad);
        CHECK(apply_err(Opt::min_nodes, bad).find("--ckpt-min-nodes") == 0);
    }
}

TEST_CASE("schedule options need --ckpt-mem; the user's MTBF beats the admin's", "[spank][options]") {
    Config cfg;
    for (auto [opt, arg, name] : {std::tuple<Opt, const char *, const char *>{Opt::ckpt_interval, "auto", "--ckpt-interval"},
                                  {Opt::node_mtbf, "30d", "--ckpt-node-mtbf"},
                                  {Opt::max_overhead, "2", "--ckpt-max-overhead"},
                                  {Opt::min_nodes, "2", "--ckpt-min-nodes"}}) {
        INFO(name);
        auto r = settle(apply_ok({{opt, arg}}), cfg);
        REQUIRE_FALSE(r);
        CHECK(r.status().message() == std::string(name) +
                                          " is given without --ckpt-mem; tierckpt is on only with --ckpt-mem=SIZE "
                                          "(e.g. --ckpt-mem=8G)");
    }

    auto site = parse_config({"node_mtbf=30d"});
    REQUIRE(site);
    auto from_admin = settle(apply_ok({{Opt::mem, "1G"}}, *site), *site);
    REQUIRE(from_admin);
    CHECK(from_admin->node_mtbf == "2592000");
    CHECK(from_admin->node_mtbf_from_admin);
    auto from_user = settle(apply_ok({{Opt::mem, "1G"}, {Opt::node_mtbf, "inf"}}, *site), *site);
    REQUIRE(from_user);
    CHECK(from_user->node_mtbf == "inf");
    CHECK_FALSE(from_user->node_mtbf_from_admin);
    // Without --ckpt-mem nothing reaches the tasks, the admin's value neither.
    auto off = settle(UserOptions{}, *site);
    REQUIRE(off);
    CHECK(off->node_mtbf.empty());
}
