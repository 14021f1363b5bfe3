// Fuzz target: the user's --ckpt-* option values. srun checks them, and
// slurmstepd parses them again as root from what the job carries (a user
// can set the SPANK option variables to anything). The first byte picks
// the option (bit 6: the admin sets node_mtbf), the rest is its value;
// then the checks that need all options, and the store size on a node of
// 1 TiB.
#include <cstdint>
#include <string>

#include "spank/config.hpp"
#include "spank/options.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    if (size == 0) return 0;
    using tck::spank::Opt;
    // New options go at the end, so that the seeds keep their meaning.
    static const Opt opts[] = {Opt::mem, Opt::replicas, Opt::persist, Opt::persist_every, Opt::transport,
                               Opt::persist_keep, Opt::ckpt_interval, Opt::node_mtbf, Opt::max_overhead};
    tck::spank::Config cfg;
    cfg.persist_dirs = {"/lustre", "/scratch/ckpt"};
    if (data[0] & 0x40) cfg.node_mtbf_s = 30 * 86400.0;  // the admin's default, under the user's
    tck::spank::UserOptions uo;
    std::string value(reinterpret_cast<const char *>(data) + 1, size - 1);
    Opt which = opts[data[0] % (sizeof opts / sizeof opts[0])];
    (void)tck::spank::apply_option(Opt::mem, "64M", cfg, uo);
    (void)tck::spank::apply_option(which, value.c_str(), cfg, uo);
    if (data[0] & 0x80) (void)tck::spank::apply_option(Opt::persist, "/lustre/me", cfg, uo);
    if (auto s = tck::spank::settle(uo, cfg)) (void)tck::spank::store_bytes(*s, cfg, 1ull << 40);
    return 0;
}
