// The C API of checkpointing: handles around tck::Checkpointer. No
// exception leaves this file.
#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "common/log.hpp"
#include "api_edge.hpp"
#include "checkpointer.hpp"
#include "tierckpt/tierckpt.h"
#include "tierckpt/tierckpt_mpi.h"

struct tierckpt_ckpt {
    std::unique_ptr<tck::Checkpointer> impl;
    tck::Source source = tck::Source::none;
};
struct tierckpt_options {
    tck::Options opts;
};

namespace {

template <typename F>
tierckpt_status_t guarded(F &&f) {
    try {
        tck::Status st = f();
        if (st) return TIERCKPT_OK;
        return tck::set_last_error(st);
    } catch (const std::bad_alloc &) {
        return tck::set_last_error(tck::Status(TIERCKPT_ERR_NO_MEMORY, "out of memory"));
    } catch (const std::exception &e) {
        return tck::set_last_error(tck::Status(TIERCKPT_ERR_INTERNAL, e.what()));
    } catch (...) {
        return tck::set_last_error(tck::Status(TIERCKPT_ERR_INTERNAL, "unknown exception"));
    }
}

tck::Status need(const void *p, const char *what) {
    if (!p) return tck::Status(TIERCKPT_ERR_INVALID, std::string(what) + " is NULL");
    return tck::Status::ok();
}

}  // namespace

extern "C" {

tierckpt_options_t *tierckpt_options_new(void) { return new (std::nothrow) tierckpt_options; }
void tierckpt_options_free(tierckpt_options_t *opts) { delete opts; }

tierckpt_status_t tierckpt_options_set(tierckpt_options_t *opts, const char *key, const char *value) {
    return guarded([&] {
        if (auto st = need(opts, "opts"); !st) return st;
        if (auto st = need(key, "key"); !st) return st;
        if (auto st = need(value, "value"); !st) return st;
        return opts->opts.set(key, value);
    });
}

tierckpt_status_t tierckpt_open_comm(MPI_Comm comm, const tierckpt_options_t *opts, tierckpt_t **ckpt) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        *ckpt = nullptr;
        tck::Options o;
        if (opts) {
            o = opts->opts;
        } else {
            auto env = tck::Options::from_env();
            if (!env) return env.status();
            o = *env;
        }
        if (o.store_path.empty()) return tck::Status(TIERCKPT_ERR_INVALID, "no store path: set the option 'store'");
        auto c = tck::Checkpointer::open(comm, o);
        if (!c) return c.status();
        auto h = std::make_unique<tierckpt_ckpt>();
        h->impl = std::move(*c);
        *ckpt = h.release();
        return tck::Status::ok();
    });
}

tierckpt_status_t tierckpt_open(const tierckpt_options_t *opts, tierckpt_t **ckpt) {
    return tierckpt_open_comm(MPI_COMM_NULL, opts, ckpt);
}

tierckpt_status_t tierckpt_register(tierckpt_t *ckpt, const char *name, void *ptr, size_t bytes) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        if (auto st = need(name, "name"); !st) return st;
        return ckpt->impl->add_region(name, ptr, bytes);
    });
}

tierckpt_status_t tierckpt_register_slice(tierckpt_t *ckpt, const char *name, void *ptr, size_t bytes,
                                          uint64_t global_offset, uint64_t global_bytes) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        if (auto st = need(name, "name"); !st) return st;
        return ckpt->impl->add_region(name, ptr, bytes, {tck::store::RegionKind::slice, global_offset, global_bytes});
    });
}

tierckpt_status_t tierckpt_register_replicated(tierckpt_t *ckpt, const char *name, void *ptr, size_t bytes) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        if (auto st = need(name, "name"); !st) return st;
        return ckpt->impl->add_region(name, ptr, bytes, {tck::store::RegionKind::replicated, 0, bytes});
    });
}

tierckpt_status_t tierckpt_unregister_all(tierckpt_t *ckpt) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        ckpt->impl->clear_regions();
        return tck::Status::ok();
    });
}

tierckpt_status_t tierckpt_save(tierckpt_t *ckpt, uint64_t version) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        return ckpt->impl->save(version);
    });
}

tierckpt_status_t tierckpt_test(tierckpt_t *ckpt, int *committed) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        if (auto st = need(committed, "committed"); !st) return st;
        auto r = ckpt->impl->test();
        if (!r) return r.status();
        *committed = *r ? 1 : 0;
        return tck::Status::ok();
    });
}

tierckpt_status_t tierckpt_due(tierckpt_t *ckpt, uint64_t step, int *due) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        if (auto st = need(due, "due"); !st) return st;
        auto r = ckpt->impl->due(step);
        if (!r) return r.status();
        *due = *r ? 1 : 0;
        return tck::Status::ok();
    });
}

tierckpt_status_t tierckpt_get_schedule(const tierckpt_t *ckpt, tierckpt_schedule_t *schedule) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        if (auto st = need(schedule, "schedule"); !st) return st;
        const tck::schedule::Decision &d = ckpt->impl->schedule_decision();
        const tck::schedule::RunConfig &c = ckpt->impl->schedule_config();
        *schedule = tierckpt_schedule_t{};
        std::snprintf(schedule->mode, sizeof schedule->mode, "%s", tck::schedule::mode_name(c.interval.kind));
        std::snprintf(schedule->bound, sizeof schedule->bound, "%s", d.count ? d.sched.bound.c_str() : "");
        schedule->decisions = d.count;
        schedule->steps = d.steps;
        schedule->next_due_step = d.next_due;
        schedule->interval_s = d.sched.interval_s;
        schedule->step_s = d.in.step_s;
        schedule->stall_s = d.in.stall_s;
        schedule->commit_s = d.in.commit_s;
        schedule->flush_s = d.in.flush_s;
        schedule->job_mtbf_s = d.count ? d.job_mtbf_s : 0;
        schedule->optimum_s = d.sched.optimum_s;
        schedule->overhead = d.sched.overhead;
        schedule->save_overhead = d.sched.save_overhead;
        schedule->lost_per_failure_s = d.sched.lost_per_failure_s;
        schedule->persist_every = d.sched.persist_every;
        std::snprintf(schedule->persist_bound, sizeof schedule->persist_bound, "%s",
                      d.count ? d.sched.persist_bound.c_str() : "");
        return tck::Status::ok();
    });
}

tierckpt_status_t tierckpt_wait(tierckpt_t *ckpt) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        return ckpt->impl->wait();
    });
}

tierckpt_status_t tierckpt_agree(tierckpt_t *ckpt, int ok, int *all_ok) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        if (auto st = need(all_ok, "all_ok"); !st) return st;
        auto r = ckpt->impl->agree(ok != 0);
        if (!r) return r.status();
        *all_ok = *r ? 1 : 0;
        return tck::Status::ok();
    });
}

tierckpt_status_t tierckpt_restore(tierckpt_t *ckpt, int *found, uint64_t *version) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        if (auto st = need(found, "found"); !st) return st;
        if (auto st = need(version, "version"); !st) return st;
        auto r = ckpt->impl->restore();
        if (!r) return r.status();
        *found = r->found ? 1 : 0;
        *version = r->version;
        ckpt->source = r->source;
        return tck::Status::ok();
    });
}

tierckpt_status_t tierckpt_fetch(tierckpt_t *ckpt, int *found, uint64_t *version) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        if (auto st = need(found, "found"); !st) return st;
        if (auto st = need(version, "version"); !st) return st;
        auto r = ckpt->impl->fetch();
        if (!r) return r.status();
        *found = r->found ? 1 : 0;
        *version = r->version;
        return tck::Status::ok();
    });
}

tierckpt_status_t tierckpt_fetch_any(tierckpt_t *ckpt, int *found, uint64_t *version, uint32_t *saved_ranks) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        if (auto st = need(found, "found"); !st) return st;
        if (auto st = need(version, "version"); !st) return st;
        if (auto st = need(saved_ranks, "saved_ranks"); !st) return st;
        auto r = ckpt->impl->fetch(true);
        if (!r) return r.status();
        *found = r->found ? 1 : 0;
        *version = r->version;
        *saved_ranks = r->found ? ckpt->impl->fetched_saved_world() : 0;
        return tck::Status::ok();
    });
}

tierckpt_status_t tierckpt_fetched_count(const tierckpt_t *ckpt, size_t *count) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        if (auto st = need(count, "count"); !st) return st;
        auto regions = ckpt->impl->fetched_regions();
        if (!regions) return regions.status();
        *count = (*regions)->size();
        return tck::Status::ok();
    });
}

tierckpt_status_t tierckpt_fetched_region(const tierckpt_t *ckpt, size_t index, const char **name, uint64_t *bytes) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        if (auto st = need(name, "name"); !st) return st;
        if (auto st = need(bytes, "bytes"); !st) return st;
        auto regions = ckpt->impl->fetched_regions();
        if (!regions) return regions.status();
        const auto &held = **regions;
        if (index >= held.size()) {
            return tck::Status(TIERCKPT_ERR_INVALID, "region index " + std::to_string(index) +
                                                         ": the fetched checkpoint has " +
                                                         std::to_string(held.size()) + " regions");
        }
        *name = held[index].name.c_str();
        *bytes = held[index].bytes;
        return tck::Status::ok();
    });
}

tierckpt_status_t tierckpt_fetched_read(const tierckpt_t *ckpt, const char *name, uint64_t offset, void *dst,
                                        uint64_t bytes) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        if (auto st = need(name, "name"); !st) return st;
        return ckpt->impl->read_fetched(name, offset, dst, bytes);
    });
}

tierckpt_status_t tierckpt_fetch_drop(tierckpt_t *ckpt) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        ckpt->impl->drop_fetched();
        return tck::Status::ok();
    });
}

const char *tierckpt_stage_path(const tierckpt_t *ckpt) {
    return ckpt && ckpt->impl ? tck::cuda::path_name(ckpt->impl->stage_path()) : "host";
}

const char *tierckpt_restore_source(const tierckpt_t *ckpt) {
    return ckpt ? tck::source_name(ckpt->source) : "none";
}

tierckpt_status_t tierckpt_get_stats(const tierckpt_t *ckpt, tierckpt_stats_t *stats) {
    return guarded([&] {
        if (auto st = need(ckpt, "ckpt"); !st) return st;
        if (auto st = need(stats, "stats"); !st) return st;
        const tck::SaveStats s = ckpt->impl->last_stats();  // a copy, taken under the worker's lock
        stats->version = s.version;
        stats->bytes = s.bytes;
        stats->wait_ms = s.wait_ms;
        stats->stall_ms = s.stall_ms;
        stats->checksum_ms = s.checksum_ms;
        stats->commit_ms = s.commit_ms;
        stats->committed = s.committed ? 1 : 0;
        const tck::PersistStats p = ckpt->impl->persist_stats();
        stats->persist_version = p.version;
        stats->persist_ms = p.ms;
        stats->persist_failures = p.failures;
        stats->persist_status = p.status;
        stats->persist_skipped = p.skipped;
        stats->committed_version = s.committed_version;
        stats->superseded = s.superseded;
        stats->room_waits = s.room_waits;
        return tck::Status::ok();
    });
}

tierckpt_status_t tierckpt_close(tierckpt_t *ckpt) {
    return guarded([&] {
        if (!ckpt) return tck::Status::ok();
        std::unique_ptr<tierckpt_ckpt> h(ckpt);
        return h->impl->close();
    });
}

}  // extern "C"
