#include <catch2/catch.hpp>

#include <string>

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
