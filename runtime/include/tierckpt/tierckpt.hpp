// tierckpt: C++ API over the C API (tierckpt.h). Errors are exceptions of
// type tierckpt::Error carrying the status code and the library's message.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tierckpt/tierckpt.h"

namespace tierckpt {

class Error : public std::runtime_error {
public:
    Error(tierckpt_status_t code, const std::string &message)
        : std::runtime_error(message), code_(code) {}
    tierckpt_status_t code() const noexcept { return code_; }

private:
    tierckpt_status_t code_;
};

// Throws Error for a failed status, with the calling thread's last message.
inline void check(tierckpt_status_t status) {
    if (status != TIERCKPT_OK) {
        const char *msg = tierckpt_last_error();
        throw Error(status, (msg && *msg) ? msg : tierckpt_status_string(status));
    }
}

inline std::string version() { return tierckpt_version(); }
inline std::string features() { return tierckpt_features(); }

// Explicit settings (see tierckpt_options_set); without them the settings
// come from the SPANK plugin's TIERCKPT_* variables.
class Options {
public:
    Options() : p_(tierckpt_options_new()) {
        if (!p_) throw Error(TIERCKPT_ERR_NO_MEMORY, "out of memory");
    }
    ~Options() { tierckpt_options_free(p_); }
    Options(const Options &) = delete;
    Options &operator=(const Options &) = delete;
    Options &set(const std::string &key, const std::string &value) {
        check(tierckpt_options_set(p_, key.c_str(), value.c_str()));
        return *this;
    }
    const tierckpt_options_t *get() const { return p_; }

private:
    tierckpt_options_t *p_;
};

// One per rank. Collective calls (construction, save, restore) must be made
// by every rank of the job. The destructor waits for a save in flight and
// never throws; call close() to see its errors.
class Checkpointer {
public:
    explicit Checkpointer(const Options *opts = nullptr) {
        check(tierckpt_open(opts ? opts->get() : nullptr, &h_));
    }
    ~Checkpointer() { tierckpt_close(h_); }
    Checkpointer(const Checkpointer &) = delete;
    Checkpointer &operator=(const Checkpointer &) = delete;
    Checkpointer(Checkpointer &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}

    void add(const std::string &name, void *ptr, std::size_t bytes) {
        check(tierckpt_register(h_, name.c_str(), ptr, bytes));
    }
    // This rank's slice of the global array name: bytes [global_offset,
    // global_offset + bytes) of global_bytes (see tierckpt_register_slice).
    void add_slice(const std::string &name, void *ptr, std::size_t bytes, std::uint64_t global_offset,
                   std::uint64_t global_bytes) {
        check(tierckpt_register_slice(h_, name.c_str(), ptr, bytes, global_offset, global_bytes));
    }
    // The same bytes on every rank (see tierckpt_register_replicated).
    void add_replicated(const std::string &name, void *ptr, std::size_t bytes) {
        check(tierckpt_register_replicated(h_, name.c_str(), ptr, bytes));
    }
    // Forgets every registered region (see tierckpt_unregister_all).
    void unregister_all() { check(tierckpt_unregister_all(h_)); }
    void save(std::uint64_t version) { check(tierckpt_save(h_, version)); }
    bool test() {
        int c = 0;
        check(tierckpt_test(h_, &c));
        return c != 0;
    }
    void wait() { check(tierckpt_wait(h_)); }
    // Whether a save is due at this step (tierckpt_due): not collective.
    bool due(std::uint64_t step) {
        int d = 0;
        check(tierckpt_due(h_, step, &d));
        return d != 0;
    }
    // The newest schedule decision (tierckpt_get_schedule).
    tierckpt_schedule_t schedule() const {
        tierckpt_schedule_t s{};
        check(tierckpt_get_schedule(h_, &s));
        return s;
    }
    // Collective: true when every rank passed ok (see tierckpt_agree).
    bool agree(bool ok) {
        int all = 0;
        check(tierckpt_agree(h_, ok ? 1 : 0, &all));
        return all != 0;
    }
    // The restored version, or nothing when no checkpoint exists.
    std::optional<std::uint64_t> restore() {
        int found = 0;
        std::uint64_t v = 0;
        check(tierckpt_restore(h_, &found, &v));
        return found ? std::optional<std::uint64_t>(v) : std::nullopt;
    }
    // Collective: the first half of restore (see tierckpt_fetch): the
    // fetched version, or nothing when no checkpoint exists.
    std::optional<std::uint64_t> fetch() {
        int found = 0;
        std::uint64_t v = 0;
        check(tierckpt_fetch(h_, &found, &v));
        return found ? std::optional<std::uint64_t>(v) : std::nullopt;
    }
    // Collective: as fetch, of a version saved by any number of ranks (see
    // tierckpt_fetch_any): the version and the number of ranks that saved
    // it, or nothing when no checkpoint exists.
    std::optional<std::pair<std::uint64_t, std::uint32_t>> fetch_any() {
        int found = 0;
        std::uint64_t v = 0;
        std::uint32_t saved = 0;
        check(tierckpt_fetch_any(h_, &found, &v, &saved));
        return found ? std::optional<std::pair<std::uint64_t, std::uint32_t>>(std::make_pair(v, saved))
                     : std::nullopt;
    }
    // The held shard's regions: (name, bytes), in the order they were saved.
    std::vector<std::pair<std::string, std::uint64_t>> fetched_regions() const {
        std::size_t n = 0;
        check(tierckpt_fetched_count(h_, &n));
        std::vector<std::pair<std::string, std::uint64_t>> out;
        out.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            const char *name = nullptr;
            std::uint64_t bytes = 0;
            check(tierckpt_fetched_region(h_, i, &name, &bytes));
            out.emplace_back(name, bytes);
        }
        return out;
    }
    void read_fetched(const std::string &name, std::uint64_t offset, void *dst, std::uint64_t bytes) const {
        check(tierckpt_fetched_read(h_, name.c_str(), offset, dst, bytes));
    }
    void drop_fetched() { check(tierckpt_fetch_drop(h_)); }
    std::string restore_source() const { return tierckpt_restore_source(h_); }
    // "host", "cuda-direct" or "cuda-bounce" (see tierckpt_stage_path).
    std::string stage_path() const { return tierckpt_stage_path(h_); }
    tierckpt_stats_t stats() const {
        tierckpt_stats_t s{};
        check(tierckpt_get_stats(h_, &s));
        return s;
    }
    void close() { check(tierckpt_close(std::exchange(h_, nullptr))); }

private:
    tierckpt_t *h_ = nullptr;
};

}  // namespace tierckpt
