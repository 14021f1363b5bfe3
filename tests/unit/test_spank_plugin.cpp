// The plugin's callbacks driven through a stand-in SPANK API: what srun
// and slurmstepd see, in the order Slurm calls them.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "spank/state.hpp"
#include "spank_stub.hpp"

extern "C" {
int slurm_spank_init(spank_t, int, char **);
int slurm_spank_init_post_opt(spank_t, int, char **);
int slurm_spank_task_init_privileged(spank_t, int, char **);
int slurm_spank_task_init(spank_t, int, char **);
int slurm_spank_job_prolog(spank_t, int, char **);
int slurm_spank_job_epilog(spank_t, int, char **);
}

namespace {

struct Plugin {
    std::string dir;
    std::vector<std::string> args;
    explicit Plugin(std::vector<std::string> extra = {}) {
        char tmpl[] = "/dev/shm/tck-plugin-XXXXXX";
        REQUIRE(::mkdtemp(tmpl));
        dir = tmpl;
        args = {"store_dir=" + dir + "/stores"};
        for (auto &a : extra) args.push_back(a);
        spank_stub::reset();
        tck::spank::state() = tck::spank::PluginState{};
    }
    ~Plugin() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    int call(int (*fn)(spank_t, int, char **)) {
        std::vector<char *> av;
        for (auto &a : args) av.push_back(a.data());
        return fn(spank_stub::handle(), static_cast<int>(av.size()), av.data());
    }
    // A new process of the plugin in `ctx` (contexts share no memory).
    // Slurm calls no init in the job_script context (prolog/epilog).
    void start(spank_context_t ctx) {
        tck::spank::state() = tck::spank::PluginState{};
        spank_stub::world().context = ctx;
        spank_stub::world().options.clear();
        spank_stub::world().job_env.clear();
        spank_stub::world().errors.clear();
        if (ctx != S_CTX_JOB_SCRIPT) REQUIRE(call(slurm_spank_init) == 0);
    }
    std::string env(const char *name) { return spank_stub::world().job_env[name]; }
    bool has_error(const std::string &text) {
        for (auto &e : spank_stub::world().errors)
            if (e.find(text) != std::string::npos) return true;
        return false;
    }
};

}  // namespace

TEST_CASE("srun: options register and bad values stop srun with the reason", "[spank][plugin]") {
    Plugin p;
    p.start(S_CTX_LOCAL);
    std::vector<std::string> names;
    for (auto &o : spank_stub::world().options) names.push_back(o.name);
    CHECK(names == std::vector<std::string>{"ckpt-mem", "ckpt-replicas", "ckpt-persist", "ckpt-persist-every",
                                            "ckpt-persist-keep", "ckpt-transport", "ckpt-interval",
                                            "ckpt-node-mtbf", "ckpt-max-overhead", "ckpt-min-nodes"});

    CHECK(spank_stub::give_option("ckpt-mem", "abc", false) < 0);
    CHECK(p.has_error("--ckpt-mem: invalid size 'abc'"));
    CHECK(spank_stub::give_option("ckpt-mem", "64M", false) == 0);
    CHECK(p.call(slurm_spank_init_post_opt) == 0);

    p.start(S_CTX_LOCAL);
    CHECK(spank_stub::give_option("ckpt-persist-every", "3", false) == 0);
    CHECK(p.call(slurm_spank_init_post_opt) < 0);  // without --ckpt-mem; Slurm counts only < 0
    CHECK(p.has_error("--ckpt-persist-every is given without --ckpt-mem"));
}

TEST_CASE("srun: bad schedule values stop srun with the option, the value and the forms", "[spank][plugin]") {
    Plugin p;
    p.start(S_CTX_LOCAL);
    CHECK(spank_stub::give_option("ckpt-interval", "10", false) == 0);
    CHECK(spank_stub::give_option("ckpt-interval", "10x", false) < 0);
    CHECK(p.has_error("--ckpt-interval=10x: expected auto, a number of steps (e.g. 100), or a duration with its "
                      "unit (e.g. 90s, 10m, 1h)"));
    CHECK(spank_stub::give_option("ckpt-node-mtbf", "0", false) < 0);
    CHECK(p.has_error("--ckpt-node-mtbf=0: expected a duration above 0"));
    CHECK(spank_stub::give_option("ckpt-max-overhead", "100%", false) < 0);
    CHECK(p.has_error("--ckpt-max-overhead=100%: expected a percentage above 0 and below 100"));

    p.start(S_CTX_LOCAL);
    CHECK(spank_stub::give_option("ckpt-max-overhead", "2", false) == 0);
    CHECK(p.call(slurm_spank_init_post_opt) < 0);
    CHECK(p.has_error("--ckpt-max-overhead is given without --ckpt-mem"));

    p.start(S_CTX_LOCAL);
    for (auto [name, value] : {std::pair<const char *, const char *>{"ckpt-mem", "64M"}, {"ckpt-interval", "auto"},
                               {"ckpt-node-mtbf", "inf"}, {"ckpt-max-overhead", "2%"}}) {
        CHECK(spank_stub::give_option(name, value, false) == 0);
    }
    CHECK(p.call(slurm_spank_init_post_opt) == 0);
}

TEST_CASE("srun: a bad node_mtbf in plugstack.conf stops srun with the key", "[spank][plugin]") {
    Plugin p({"node_mtbf=0"});
    p.start(S_CTX_LOCAL);
    CHECK(p.call(slurm_spank_init_post_opt) < 0);
    CHECK(p.has_error("plugstack.conf: node_mtbf=0: expected a duration above 0"));
}

TEST_CASE("slurmstepd: the schedule's variables, from the user, the admin or neither", "[spank][plugin]") {
    {
        // Neither: no variable, so what the user exported passes through
        // and else the runtime's defaults hold.
        Plugin p;
        p.start(S_CTX_REMOTE);
        spank_stub::world().job_env["TIERCKPT_CKPT_INTERVAL"] = "25";
        REQUIRE(spank_stub::give_option("ckpt-mem", "1M", true) == 0);
        REQUIRE(p.call(slurm_spank_init_post_opt) == 0);
        CHECK_FALSE(p.env("TIERCKPT_STORE").empty());
        CHECK(p.env("TIERCKPT_CKPT_INTERVAL") == "25");
        CHECK(spank_stub::world().job_env.count("TIERCKPT_NODE_MTBF") == 0);
        CHECK(spank_stub::world().job_env.count("TIERCKPT_MAX_OVERHEAD") == 0);
        CHECK(p.call(slurm_spank_task_init) == 0);
    }
    {
        // The options, normalized; the user's MTBF over the admin's.
        Plugin p({"node_mtbf=30d"});
        p.start(S_CTX_REMOTE);
        spank_stub::world().job_env["TIERCKPT_CKPT_INTERVAL"] = "25";
        REQUIRE(spank_stub::give_option("ckpt-mem", "1M", true) == 0);
        REQUIRE(spank_stub::give_option("ckpt-interval", "10m", true) == 0);
        REQUIRE(spank_stub::give_option("ckpt-node-mtbf", "264d", true) == 0);
        REQUIRE(spank_stub::give_option("ckpt-max-overhead", "2%", true) == 0);
        REQUIRE(p.call(slurm_spank_init_post_opt) == 0);
        CHECK(p.env("TIERCKPT_CKPT_INTERVAL") == "600s");
        CHECK(p.env("TIERCKPT_NODE_MTBF") == "22809600");
        CHECK(p.env("TIERCKPT_MAX_OVERHEAD") == "2");
        CHECK(p.call(slurm_spank_task_init) == 0);

        p.start(S_CTX_REMOTE);  // the next step: steps
        REQUIRE(spank_stub::give_option("ckpt-mem", "1M", true) == 0);
        REQUIRE(spank_stub::give_option("ckpt-interval", "50", true) == 0);
        REQUIRE(p.call(slurm_spank_init_post_opt) == 0);
        CHECK(p.env("TIERCKPT_CKPT_INTERVAL") == "50");
        // The admin's MTBF when the user gives none.
        CHECK(p.env("TIERCKPT_NODE_MTBF") == "2592000");
        CHECK(spank_stub::world().job_env.count("TIERCKPT_MAX_OVERHEAD") == 0);

        // The admin's is a default: a variable the user exported stays.
        p.start(S_CTX_REMOTE);
        spank_stub::world().job_env["TIERCKPT_NODE_MTBF"] = "inf";
        REQUIRE(spank_stub::give_option("ckpt-mem", "1M", true) == 0);
        REQUIRE(p.call(slurm_spank_init_post_opt) == 0);
        CHECK(p.env("TIERCKPT_NODE_MTBF") == "inf");
        // An option beats the exported variable.
        p.start(S_CTX_REMOTE);
        spank_stub::world().job_env["TIERCKPT_NODE_MTBF"] = "inf";
        REQUIRE(spank_stub::give_option("ckpt-mem", "1M", true) == 0);
        REQUIRE(spank_stub::give_option("ckpt-node-mtbf", "1000h", true) == 0);
        REQUIRE(p.call(slurm_spank_init_post_opt) == 0);
        CHECK(p.env("TIERCKPT_NODE_MTBF") == "3600000");
    }
    {
        // A value srun would have refused (the job's SPANK variables are
        // the user's to change) fails the tasks with the reason.
        Plugin p;
        p.start(S_CTX_REMOTE);
        REQUIRE(spank_stub::give_option("ckpt-mem", "1M", true) == 0);
        CHECK(spank_stub::give_option("ckpt-interval", "0", true) == 0);  // kept for task_init
        CHECK(p.call(slurm_spank_init_post_opt) == 0);
        CHECK(p.env("TIERCKPT_STORE").empty());
        CHECK(spank_stub::world().job_env.count("TIERCKPT_CKPT_INTERVAL") == 0);
        CHECK(p.call(slurm_spank_task_init) < 0);
        CHECK(p.has_error("--ckpt-interval=0: expected auto"));
    }
}

TEST_CASE("srun: a bad plugstack.conf stops srun at init_post_opt", "[spank][plugin]") {
    Plugin p({"sotre_dir=/x"});
    p.start(S_CTX_LOCAL);
    CHECK(p.call(slurm_spank_init_post_opt) < 0);
    CHECK(p.has_error("unknown key 'sotre_dir'"));
}

TEST_CASE("slurmstepd: the store is made, handed to the tasks, re-attached by the next step", "[spank][plugin]") {
    Plugin p;
    p.start(S_CTX_REMOTE);
    spank_stub::world().job_id = 77;
    spank_stub::world().restart_count = 2;
    spank_stub::world().job_env["SLURM_RESTART_COUNT"] = "5";  // Slurm's own item comes first
    REQUIRE(spank_stub::give_option("ckpt-mem", "8M", true) == 0);
    REQUIRE(spank_stub::give_option("ckpt-replicas", "2", true) == 0);
    REQUIRE(spank_stub::give_option("ckpt-persist", "/lustre/me", true) == 0);
    REQUIRE(p.call(slurm_spank_init_post_opt) == 0);
    INFO((spank_stub::world().errors.empty() ? "" : spank_stub::world().errors[0]));
    CHECK(p.env("TIERCKPT_STORE") == p.dir + "/stores/job.77/store");
    CHECK(p.env("TIERCKPT_STORE_BYTES") == std::to_string(8 << 20));
    CHECK(p.env("TIERCKPT_STORE_CREATED") == "1");
    CHECK(p.env("TIERCKPT_REPLICAS") == "2");
    CHECK(p.env("TIERCKPT_TRANSPORT") == "auto");
    CHECK(p.env("TIERCKPT_PERSIST_DIR") == "/lustre/me");
    CHECK(p.env("TIERCKPT_PERSIST_EVERY") == "10");
    CHECK(p.env("TIERCKPT_JOB_ID") == "77");
    CHECK(p.env("TIERCKPT_RESTART_COUNT") == "2");
    CHECK(p.call(slurm_spank_task_init_privileged) == 0);
    CHECK_FALSE(p.env("TIERCKPT_MEMLOCK_BYTES").empty());
    CHECK(p.call(slurm_spank_task_init) == 0);

    // A step srun starts: Slurm 22.05 gives no count there; the job's
    // variable, when it is a number.
    for (auto [env, want] : {std::pair<const char *, const char *>{"3", "3"}, {"x9", "0"}, {"99999999999", "0"}}) {
        p.start(S_CTX_REMOTE);
        spank_stub::world().restart_count = 0;
        spank_stub::world().job_env["SLURM_RESTART_COUNT"] = env;
        REQUIRE(spank_stub::give_option("ckpt-mem", "8M", true) == 0);
        REQUIRE(p.call(slurm_spank_init_post_opt) == 0);
        CHECK(p.env("TIERCKPT_RESTART_COUNT") == want);
    }

    p.start(S_CTX_REMOTE);  // the next step of the same job
    REQUIRE(spank_stub::give_option("ckpt-mem", "8M", true) == 0);
    REQUIRE(p.call(slurm_spank_init_post_opt) == 0);
    CHECK(p.env("TIERCKPT_STORE_CREATED") == "0");
    CHECK(p.env("TIERCKPT_REPLICAS") == "1");
    CHECK(p.call(slurm_spank_task_init) == 0);
}

TEST_CASE("slurmstepd: a store that cannot be made fails the tasks with the reason", "[spank][plugin]") {
    Plugin p({"max_mem=4M"});
    p.start(S_CTX_REMOTE);
    REQUIRE(spank_stub::give_option("ckpt-mem", "8M", true) == 0);
    CHECK(p.call(slurm_spank_init_post_opt) == 0);  // Slurm would lose a failure here
    CHECK(p.env("TIERCKPT_STORE").empty());
    spank_stub::world().errors.clear();
    spank_stub::world().task_id = 0;
    CHECK(p.call(slurm_spank_task_init) < 0);
    CHECK(p.has_error("above the admin's cap max_mem (4 MiB)"));
    spank_stub::world().errors.clear();
    spank_stub::world().task_id = 1;
    CHECK(p.call(slurm_spank_task_init) < 0);  // every task fails, one says why
    CHECK(spank_stub::world().errors.empty());
    struct stat st {};
    CHECK(::lstat((p.dir + "/stores/job.1").c_str(), &st) != 0);  // nothing created
}

TEST_CASE("slurmstepd: failure_domains=topology gives each node its leaf switch", "[spank][plugin]") {
    Plugin p({"failure_domains=topology"});
    {
        std::ofstream(p.dir + "/topology.conf") << "SwitchName=s1 Nodes=n[1-2]\nSwitchName=s2 Nodes=n[3-4]\n"
                                                   "SwitchName=top Switches=s[1-2]\n";
    }
    // Beside slurmstepd's own SLURM_CONF (slurmd sets it); the job's
    // environment has another, which must not count.
    struct EnvGuard {
        const char *old = std::getenv("SLURM_CONF");
        std::string saved = old ? old : "";
        ~EnvGuard() { old ? ::setenv("SLURM_CONF", saved.c_str(), 1) : ::unsetenv("SLURM_CONF"); }
    } guard;
    ::setenv("SLURM_CONF", (p.dir + "/slurm.conf").c_str(), 1);
    for (auto [node, domain] : {std::pair<const char *, const char *>{"n2", "s1"}, {"n3", "s2"}, {"n9", ""}}) {
        p.start(S_CTX_REMOTE);
        tck::spank::state().host_name = [n = std::string(node)] { return n; };
        spank_stub::world().job_env["SLURMD_NODENAME"] = "n1";  // srun carries it from the user: never used
        spank_stub::world().job_env["SLURM_CONF"] = "/home/user/slurm.conf";
        REQUIRE(spank_stub::give_option("ckpt-mem", "8M", true) == 0);
        REQUIRE(p.call(slurm_spank_init_post_opt) == 0);
        CHECK(p.env("TIERCKPT_FAILURE_DOMAIN") == domain);
        CHECK(p.call(slurm_spank_task_init) == 0);
    }
}

TEST_CASE("slurmstepd: a broken topology.conf fails the tasks with the file, the line and the fix", "[spank][plugin]") {
    Plugin p({"failure_domains=topology"});
    p.args.push_back("topology_conf=" + p.dir + "/topology.conf");
    {
        std::ofstream(p.dir + "/topology.conf") << "SwitchName=s1 Nodes=n[1-2]\nSwitchName=s2 Nodes=n[2-4\n";
    }
    p.start(S_CTX_REMOTE);
    tck::spank::state().host_name = [] { return std::string("n1"); };
    REQUIRE(spank_stub::give_option("ckpt-mem", "8M", true) == 0);
    CHECK(p.call(slurm_spank_init_post_opt) == 0);
    CHECK(p.env("TIERCKPT_STORE").empty());
    CHECK(p.call(slurm_spank_task_init) < 0);
    CHECK(p.has_error("failure_domains=topology: " + p.dir + "/topology.conf line 2: Nodes=: host list 'n[2-4': "
                      "unbalanced [; ask the admin to fix it"));
    struct stat st {};
    CHECK(::lstat((p.dir + "/stores/job.1").c_str(), &st) != 0);  // no store made

    std::filesystem::remove(p.dir + "/topology.conf");
    p.start(S_CTX_REMOTE);
    REQUIRE(spank_stub::give_option("ckpt-mem", "8M", true) == 0);
    CHECK(p.call(slurm_spank_init_post_opt) == 0);
    CHECK(p.call(slurm_spank_task_init) < 0);
    CHECK(p.has_error(p.dir + "/topology.conf does not exist: write it"));
}

TEST_CASE("slurmstepd: no --ckpt-mem, batch and extern steps: no store", "[spank][plugin]") {
    Plugin p;
    p.start(S_CTX_REMOTE);
    REQUIRE(p.call(slurm_spank_init_post_opt) == 0);
    CHECK(p.env("TIERCKPT_STORE").empty());
    CHECK(p.call(slurm_spank_task_init) == 0);

    p.start(S_CTX_REMOTE);
    spank_stub::world().step_id = 0xfffffffb;  // the batch script
    REQUIRE(spank_stub::give_option("ckpt-mem", "8M", true) == 0);
    REQUIRE(p.call(slurm_spank_init_post_opt) == 0);
    CHECK(p.env("TIERCKPT_STORE").empty());
    CHECK(p.call(slurm_spank_task_init) == 0);
}

TEST_CASE("epilog keeps the store for a requeue; the prolog lifts that; expiry frees it", "[spank][plugin]") {
    Plugin p({"keep_seconds=300"});
    p.start(S_CTX_REMOTE);
    spank_stub::world().job_id = 6;
    REQUIRE(spank_stub::give_option("ckpt-mem", "1M", true) == 0);
    REQUIRE(p.call(slurm_spank_init_post_opt) == 0);
    std::string stores = p.dir + "/stores";
    struct stat st {};

    p.start(S_CTX_JOB_SCRIPT);
    spank_stub::world().job_id = 6;
    std::int64_t before = std::time(nullptr);
    CHECK(p.call(slurm_spank_job_epilog) == 0);
    CHECK(::lstat((stores + "/job.6/store").c_str(), &st) == 0);
    auto dir = tck::spank::StoreDir::open(stores, false);
    REQUIRE(dir);
    auto listed = dir->list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK((*listed)[0].expires >= before + 300);
    CHECK((*listed)[0].expires <= std::time(nullptr) + 300);

    // The requeued job comes back: the prolog lifts the expiry.
    CHECK(p.call(slurm_spank_job_prolog) == 0);
    CHECK(::lstat((stores + "/.expire/6").c_str(), &st) != 0);
    CHECK(::lstat((stores + "/job.6/store").c_str(), &st) == 0);

    // It ends again; once expired, any prolog frees it.
    CHECK(p.call(slurm_spank_job_epilog) == 0);
    REQUIRE(dir->mark_expiring(6, std::time(nullptr) - 1));
    spank_stub::world().job_id = 99;  // another job's prolog
    CHECK(p.call(slurm_spank_job_prolog) == 0);
    CHECK(::lstat((stores + "/job.6").c_str(), &st) != 0);
}

TEST_CASE("keep_seconds=0 frees the store at the epilog", "[spank][plugin]") {
    Plugin p({"keep_seconds=0"});
    p.start(S_CTX_REMOTE);
    spank_stub::world().job_id = 8;
    REQUIRE(spank_stub::give_option("ckpt-mem", "1M", true) == 0);
    REQUIRE(p.call(slurm_spank_init_post_opt) == 0);
    p.start(S_CTX_JOB_SCRIPT);
    spank_stub::world().job_id = 8;
    CHECK(p.call(slurm_spank_job_epilog) == 0);
    struct stat st {};
    CHECK(::lstat((p.dir + "/stores/job.8").c_str(), &st) != 0);
}

TEST_CASE("prolog/epilog never fail, even with a broken configuration", "[spank][plugin]") {
    Plugin p({"max_mem=nonsense"});
    p.start(S_CTX_JOB_SCRIPT);
    CHECK(p.call(slurm_spank_job_prolog) == 0);
    CHECK(p.call(slurm_spank_job_epilog) == 0);
}
