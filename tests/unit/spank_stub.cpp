#include "spank_stub.hpp"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace spank_stub {

World &world() {
    static World w;
    return w;
}

void reset() {
    world() = World{};
    world().uid = ::getuid();
    world().gid = ::getgid();
}

spank_t handle() {
    static int dummy;
    return reinterpret_cast<spank_t>(&dummy);
}

int give_option(const std::string &name, const char *optarg, bool remote) {
    for (auto &o : world().options) {
        if (name == o.name) return o.cb(o.val, optarg, remote ? 1 : 0);
    }
    return -99;
}

}  // namespace spank_stub

using spank_stub::world;

namespace {
std::string vformat(const char *fmt, va_list ap) {
    char buf[4096];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    return buf;
}
}  // namespace

extern "C" {

const char *spank_strerror(spank_err_t) { return "stub error"; }
int spank_remote(spank_t) { return world().context == S_CTX_REMOTE; }
spank_context_t spank_context(void) { return world().context; }

spank_err_t spank_option_register(spank_t, struct spank_option *opt) {
    world().options.push_back(*opt);
    return spank_err_t(ESPANK_SUCCESS);
}

spank_err_t spank_option_getopt(spank_t, struct spank_option *, char **) { return spank_err_t(ESPANK_ERROR); }

spank_err_t spank_get_item(spank_t, spank_item_t item, ...) {
    va_list ap;
    va_start(ap, item);
    spank_err_t rc = spank_err_t(ESPANK_SUCCESS);
    switch (item) {
    case S_JOB_UID: *va_arg(ap, uid_t *) = world().uid; break;
    case S_JOB_GID: *va_arg(ap, gid_t *) = world().gid; break;
    case S_JOB_ID: *va_arg(ap, std::uint32_t *) = world().job_id; break;
    case S_JOB_STEPID: *va_arg(ap, std::uint32_t *) = world().step_id; break;
    case S_TASK_ID: *va_arg(ap, int *) = world().task_id; break;
    case S_SLURM_RESTART_COUNT: *va_arg(ap, std::uint32_t *) = world().restart_count; break;
    default: rc = spank_err_t(ESPANK_BAD_ARG);
    }
    va_end(ap);
    return rc;
}

spank_err_t spank_getenv(spank_t, const char *var, char *buf, int len) {
    auto it = world().job_env.find(var);
    if (it == world().job_env.end()) return spank_err_t(ESPANK_ENV_NOEXIST);
    if (static_cast<int>(it->second.size()) >= len) return spank_err_t(ESPANK_NOSPACE);
    std::strcpy(buf, it->second.c_str());
    return spank_err_t(ESPANK_SUCCESS);
}

spank_err_t spank_setenv(spank_t, const char *var, const char *val, int overwrite) {
    if (!overwrite && world().job_env.count(var)) return spank_err_t(ESPANK_ENV_EXISTS);
    world().job_env[var] = val;
    return spank_err_t(ESPANK_SUCCESS);
}

void slurm_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    world().errors.push_back(vformat(fmt, ap));
    va_end(ap);
}

void slurm_info(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    world().infos.push_back(vformat(fmt, ap));
    va_end(ap);
}

void slurm_debug(const char *, ...) {}

}  // extern "C"
