#include "checkpointer.hpp"

#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>
#include <thread>

#include "../common/clock.hpp"
#include "../common/env_names.hpp"
#include "../common/log.hpp"
#include "../common/parse.hpp"
#include "../common/random.hpp"
#include "../common/size.hpp"
#include "crc32c.hpp"
#include "persist.hpp"
#include "placement.hpp"
#include "transport/msg_check.hpp"

namespace tck {

namespace {

constexpr int kTagHeader = 7101;
constexpr int kTagData = 7102;
constexpr std::uint64_t kChunk = 1ull << 30;     // MPI counts are int
// How long open waits for another run's ranks to leave the node store: a
// step relaunched after a failure may start while the ranks of the step it
// replaces still exit on the surviving nodes.
constexpr int kRunWaitMs = 20000;

Status mpi_error(const char *what, int rc) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return error(TIERCKPT_ERR_PEER, "{} failed: {}", what, std::string(msg, static_cast<std::size_t>(len)));
}

// MPI_Test, and with block again in short sleeps until done: Open MPI's
// blocking waits poll without pause, and while a rank waits its worker may
// be serving or pulling shards, which then lacks the CPU on a busy node.
int test_request(MPI_Request &req, int &done, bool block) {
    int rc = MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    while (block && rc == MPI_SUCCESS && !done) {
        ::usleep(100);
        rc = MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    }
    return rc;
}

// MPI_Allreduce(MPI_MIN) that waits by test_request.
int allreduce_min_yielding(MPI_Comm comm, int v) {
    int out = v;
    MPI_Request req = MPI_REQUEST_NULL;
    if (MPI_Iallreduce(&v, &out, 1, MPI_INT, MPI_MIN, comm, &req) != MPI_SUCCESS) return 0;
    int done = 0;
    test_request(req, done, true);
    return done ? out : 0;
}

// Every rank's bytes (of any length each), indexed by rank. Collective.
Result<std::vector<std::vector<std::uint8_t>>> allgather_bytes(MPI_Comm comm, const void *data, std::size_t len,
                                                                const char *what) {
    int world = 0;
    MPI_Comm_size(comm, &world);
    int mine = static_cast<int>(len);
    std::vector<int> lens(static_cast<std::size_t>(world)), displs(static_cast<std::size_t>(world));
    int rc = MPI_Allgather(&mine, 1, MPI_INT, lens.data(), 1, MPI_INT, comm);
    if (rc != MPI_SUCCESS) return mpi_error(what, rc);
    int total = 0;
    for (int i = 0; i < world; ++i) {
        displs[static_cast<std::size_t>(i)] = total;
        total += lens[static_cast<std::size_t>(i)];
    }
    std::vector<std::uint8_t> all(static_cast<std::size_t>(total));
    rc = MPI_Allgatherv(data, mine, MPI_BYTE, all.data(), lens.data(), displs.data(), MPI_BYTE, comm);
    if (rc != MPI_SUCCESS) return mpi_error(what, rc);
    std::vector<std::vector<std::uint8_t>> out(static_cast<std::size_t>(world));
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto b = all.begin() + displs[i];
        out[i].assign(b, b + lens[i]);
    }
    return out;
}

// Test hooks (documented in tierckpt(3)): TIERCKPT_TEST_CRASH_IN_SAVE=V:R
// makes rank R exit in the middle of copying version V, as a killed
// process would; TIERCKPT_TEST_IGNORE_REPLICA=V:R makes rank R drop the
// requests to copy version V, as a partner that hangs or is cut off.
bool test_hook(const char *name, std::uint64_t version, int rank) {
    const char *e = std::getenv(name);
    if (!e) return false;
    unsigned long long v = 0;
    int r = -1;
    return std::sscanf(e, "%llu:%d", &v, &r) == 2 && v == version && r == rank;
}
bool crash_requested(std::uint64_t version, int rank) {
    return test_hook("TIERCKPT_TEST_CRASH_IN_SAVE", version, rank);
}

}  // namespace

const char *source_name(Source s) {
    switch (s) {
    case Source::none: return "none";
    case Source::local: return "local";
    case Source::peer: return "peer";
    case Source::persistent: return "persistent";
    }
    return "?";
}

Result<Options> Options::from_env() {
    Options o;
    const char *store = std::getenv(env::kStore);
    if (!store || !*store) {
        return error(TIERCKPT_ERR_INVALID,
                     "no node store: {} is not set; run the job with srun --ckpt-mem=SIZE (tierckpt's SPANK plugin), "
                     "or open with an explicit store path",
                     env::kStore);
    }
    o.store_path = store;
    if (const char *p = std::getenv(env::kPrefault)) o.prefault = std::strcmp(p, "0") != 0;
    if (const char *j = std::getenv(env::kJobId)) {
        auto n = parse_uint(env::kJobId, j, 0, std::numeric_limits<std::uint64_t>::max());
        if (n) o.job_id = *n;
    }
    const std::pair<const char *, const char *> keys[] = {
        {env::kReplicas, "replicas"},          {env::kTransport, "transport"},
        {env::kReplicaTimeout, "replica_timeout_ms"}, {env::kPeerTimeout, "peer_timeout_ms"},
        {env::kFailureDomain, "failure_domain"}, {env::kPersistDir, "persist_dir"},
        {env::kPersistEvery, "persist_every"}, {env::kPersistKeep, "persist_keep"},
        {env::kCuda, "cuda"},
    };
    for (const auto &[key, k] : keys) {
        const char *v = std::getenv(key);
        if (!v || !*v) continue;
        if (key == env::kPersistEvery && std::strcmp(v, "0") == 0) continue;  // the plugin's "no persistent tier"
        if (key == env::kPersistKeep && std::strcmp(v, "0") == 0) continue;
        Status st = o.set(k, v);
        if (!st) return error(st.code(), "{}: {}", key, st.message());
    }
    return o;
}

Status Options::set(const std::string &key, const std::string &value) {
    if (key == "store") {
        auto p = parse_abs_path("store", value);
        if (!p) return p.status();
        store_path = *p;
    } else if (key == "store_bytes") {
        auto s = parse_size(value, false);
        if (!s) return error(TIERCKPT_ERR_INVALID, "store_bytes: {}", s.status().message());
        store_bytes = s->bytes;
    } else if (key == "prefault") {
        auto b = parse_bool(key, value);
        if (!b) return b.status();
        prefault = *b;
    } else if (key == "job_id") {
        auto n = parse_uint(key, value, 0, std::numeric_limits<std::uint64_t>::max());
        if (!n) return n.status();
        job_id = *n;
    } else if (key == "replicas") {
        auto n = parse_uint(key, value, 0, 16);
        if (!n) return n.status();
        replicas = static_cast<unsigned>(*n);
    } else if (key == "transport") {
        if (value != "ucx" && value != "ofi" && value != "auto") {
            return error(TIERCKPT_ERR_INVALID, "transport={}: expected ucx, ofi or auto", value);
        }
        transport = value;
    } else if (key == "replica_timeout_ms") {
        auto n = parse_uint(key, value, 1, 3600000);
        if (!n) return n.status();
        replica_timeout_ms = static_cast<int>(*n);
    } else if (key == "failure_domain") {
        if (value.size() > 64 || value.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
                                     std::string::npos) {
            return error(TIERCKPT_ERR_INVALID, "failure_domain={}: give up to 64 letters, digits, '_', '.' or '-'",
                         value);
        }
        failure_domain = value;
    } else if (key == "peer_timeout_ms") {
        auto n = parse_uint(key, value, 0, 3600000);
        if (!n) return n.status();
        if (*n != 0 && *n < 500) return error(TIERCKPT_ERR_INVALID, "peer_timeout_ms={}: give 0 (off) or at least 500", *n);
        peer_timeout_ms = static_cast<int>(*n);
    } else if (key == "persist_dir") {
        if (value.empty()) {
            persist_dir.clear();
        } else {
            auto p = parse_abs_path(key, value);
            if (!p) return p.status();
            persist_dir = *p;
        }
    } else if (key == "persist_every") {
        auto n = parse_uint(key, value, 1, 1000000);
        if (!n) return n.status();
        persist_every = *n;
    } else if (key == "persist_keep") {
        auto n = parse_uint(key, value, 1, persist::kMaxKeep);
        if (!n) return n.status();
        persist_keep = static_cast<std::uint32_t>(*n);
    } else if (key == "cuda") {
        auto b = parse_bool(key, value);
        if (!b) return b.status();
        cuda = *b;
    } else {
        return error(TIERCKPT_ERR_INVALID,
                     "unknown option '{}' (known: store, store_bytes, prefault, job_id, replicas, transport, "
                     "replica_timeout_ms, peer_timeout_ms, failure_domain, persist_dir, persist_every, "
                     "persist_keep, cuda)",
                     key);
    }
    return Status::ok();
}

namespace {

// This rank's share of the node's CPUs: the ones it may run on when it is
// bound to fewer than all (Slurm's task binding, a cgroup cpuset), else
// the node's divided among its ranks.
unsigned cpu_share(int node_ranks) {
    unsigned all = std::thread::hardware_concurrency();
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        auto mine = static_cast<unsigned>(CPU_COUNT(&set));
        if (mine > 0 && mine < all) return mine;
    }
    return all / static_cast<unsigned>(std::max(node_ranks, 1));
}

}  // namespace

Result<std::unique_ptr<Checkpointer>> Checkpointer::open(MPI_Comm comm, const Options &opts) {
    std::unique_ptr<Checkpointer> c(new Checkpointer());
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return mpi_error("MPI_Init_thread", rc);
        c->we_initialized_mpi_ = true;
        if (comm == MPI_COMM_NULL) comm = MPI_COMM_WORLD;
    }
    if (comm == MPI_COMM_NULL) comm = MPI_COMM_WORLD;
    // Errors come back as codes, never abort the application.
    MPI_Comm_dup(comm, &c->comm_);
    MPI_Comm_set_errhandler(c->comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->comm_, &c->rank_);
    MPI_Comm_size(c->comm_, &c->world_);
    MPI_Comm_split_type(c->comm_, MPI_COMM_TYPE_SHARED, c->rank_, MPI_INFO_NULL, &c->node_comm_);
    MPI_Comm_rank(c->node_comm_, &c->node_rank_);
    MPI_Comm_size(c->node_comm_, &c->node_size_);
    c->crc_threads_ = std::clamp(cpu_share(c->node_size_), 1u, 8u);
    int leader = c->rank_;
    MPI_Bcast(&leader, 1, MPI_INT, 0, c->node_comm_);
    c->leader_of_.resize(static_cast<std::size_t>(c->world_));
    MPI_Allgather(&leader, 1, MPI_INT, c->leader_of_.data(), 1, MPI_INT, c->comm_);
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    auto hosts = allgather_bytes(c->comm_, host, std::strlen(host), "exchanging node names");
    if (!hosts) return hosts.status();
    for (const auto &h : *hosts) c->hosts_.emplace_back(h.begin(), h.end());
    if (const char *r = std::getenv(env::kRunReport)) c->run_report_ = std::strcmp(r, "1") == 0;
    if (const char *e = std::getenv(env::kExpectVersion)) {
        auto v = parse_uint(env::kExpectVersion, e, 0, std::numeric_limits<std::uint64_t>::max());
        if (!v) return v.status();
        c->expect_version_ = *v;
    }

    // Every rank maps the node's store; one formats it if it is new.
    int ok = 1;
    Status st;
    if (c->node_rank_ == 0) {
        auto f = store::StoreFile::open(opts.store_path, opts.store_bytes, opts.prefault);
        if (f) {
            st = f->format_if_needed(opts.job_id);
            if (st) c->store_.emplace(std::move(*f));
        } else {
            st = f.status();
        }
        ok = st.is_ok();
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, c->node_comm_);
    if (ok && c->node_rank_ != 0) {
        auto f = store::StoreFile::open(opts.store_path, 0, opts.prefault);
        if (f) c->store_.emplace(std::move(*f));
        else st = f.status();
        ok = st.is_ok();
    }
    // Past this point every rank gives up together, communicators freed.
    auto give_up = [&c](Status why) {
        MPI_Comm_free(&c->node_comm_);
        MPI_Comm_free(&c->comm_);
        return why;
    };
    int all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, c->comm_);
    if (!all_ok) {
        if (st) st = error(TIERCKPT_ERR_IO, "another rank could not open its node store");
        return give_up(st);
    }
    st = c->join_run(host);
    if (!st) return give_up(st);
    c->job_id_ = opts.job_id;
    c->persist_dir_ = opts.persist_dir;
    c->persist_every_ = opts.persist_every ? opts.persist_every : 1;
    c->persist_keep_ = opts.persist_keep ? opts.persist_keep : persist::kDefaultKeep;
    if (!c->persist_dir_.empty() && c->node_rank_ == 0) {
        // Recorded in the store, for the flush at the end of the job.
        Status pst = c->store_->set_persist_info({c->persist_dir_, c->persist_keep_,
                                                  static_cast<std::uint32_t>(c->persist_every_)});
        if (!pst) log::warn("{}: the flush at job end will not find it", pst.message());
    }
    c->cuda_enabled_ = opts.cuda;
    if (const char *p = std::getenv("TIERCKPT_TEST_STAGE_PIECES")) c->stage_pieces_ = std::strcmp(p, "1") == 0;
    c->wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!c->wake_fd_) return error(TIERCKPT_ERR_IO, "eventfd: {}", std::strerror(errno));
    st = c->setup_replication(opts);
    if (!st) return give_up(st);
    c->worker_ = std::thread([p = c.get()] { p->worker_loop(); });
    if (!c->persist_dir_.empty()) c->flusher_ = std::thread([p = c.get()] { p->flusher_loop(); });
    return c;
}

// Collective. One run per store at a time (store_format.hpp, SessionInfo):
// rank 0 names the run, every rank joins it on its node's store, and all
// agree (a refusal on one node fails the open everywhere).
Status Checkpointer::join_run(const char *host) {
    std::uint64_t run_id = 0;
    if (rank_ == 0) {
        auto drawn = random_u64();
        run_id = drawn ? *drawn : static_cast<std::uint64_t>(::getpid()) << 32 ^ static_cast<std::uint64_t>(now_ms());
    }
    MPI_Bcast(&run_id, 1, MPI_UINT64_T, 0, comm_);
    const char *job = std::getenv("SLURM_JOB_ID");
    const char *step = std::getenv("SLURM_STEP_ID");
    std::string who = fmt::format("job {} step {}, {} ranks (rank {} on {}, pid {})", job ? job : "?",
                                  step ? step : "?", world_, rank_, host, ::getpid());
    Status st = store_->join_session(run_id, who, kRunWaitMs);
    int ok = st.is_ok(), all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm_);
    if (!all_ok && st) st = error(TIERCKPT_ERR_INVALID, "another rank's node store is in use by another run");
    return st;
}

std::vector<int> Checkpointer::ranks_on(int node_leader) const {
    std::vector<int> there;  // in order
    for (int i = 0; i < world_; ++i) {
        if (leader_of_[static_cast<std::size_t>(i)] == node_leader) there.push_back(i);
    }
    return there;
}

// Collective. Partners: the node's ranks replicate to the next `replicas`
// nodes in order, rank for rank by their index on the node.
Status Checkpointer::setup_replication(const Options &opts) {
    replica_timeout_ms_ = opts.replica_timeout_ms;
    std::vector<int> nodes(leader_of_);
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    unsigned r = std::min<unsigned>(opts.replicas, static_cast<unsigned>(nodes.size() - 1));
    if (opts.replicas > r && rank_ == 0) {
        log::warn("{} replicas asked, but the job spans {} node(s): keeping {}", opts.replicas, nodes.size(), r);
    }
    if (r == 0) return Status::ok();

    // Every rank must have a transport, or none replicates.
    Status st;
    auto t = make_transport(opts.transport);
    std::vector<std::uint8_t> blob;
    if (t) {
        auto b = (*t)->local_blob(store_->base(), store_->size());
        if (b) blob = std::move(*b);
        else st = b.status();
    } else {
        st = t.status();
    }
    int ok = st.is_ok(), all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm_);
    if (!all_ok) {
        if (st) st = error(TIERCKPT_ERR_UNSUPPORTED, "another rank has no working transport");
        return error(st.code(), "--ckpt-replicas={} needs an RDMA transport ({}): {}", opts.replicas, opts.transport,
                     st.message());
    }
    auto blobs = allgather_bytes(comm_, blob.data(), blob.size(), "exchanging transport addresses");
    if (!blobs) return blobs.status();
    // The job's token: only the ranks of this job hold it (transport.hpp).
    std::uint64_t drawn[2] = {1, 0};  // {rank 0 could draw it, the token}
    if (rank_ == 0) {
        auto token = random_u64();
        if (token) drawn[1] = *token;
        else st = token.status();
        drawn[0] = token.is_ok();
    }
    if (int rc = MPI_Bcast(drawn, 2, MPI_UINT64_T, 0, comm_); rc != MPI_SUCCESS) {
        return mpi_error("handing out the job's token", rc);
    }
    if (!drawn[0]) return error(TIERCKPT_ERR_IO, "cannot draw the job's transport token: {}", st ? "on rank 0" : st.message());
    st = (*t)->set_peers(*blobs, rank_, drawn[1]);
    if (!st) return st;
    transport_ = std::move(*t);

    // Every node's failure domain, as its leader sees it.
    auto domains = allgather_bytes(comm_, opts.failure_domain.data(), opts.failure_domain.size(),
                                   "exchanging failure domains");
    if (!domains) return domains.status();
    std::vector<std::string> node_domains;
    for (int leader : nodes) {
        const auto &d = (*domains)[static_cast<std::size_t>(leader)];
        node_domains.emplace_back(d.begin(), d.end());
    }
    auto partners_of = [&](int rank) {
        int leader = leader_of_[static_cast<std::size_t>(rank)];
        std::size_t node = static_cast<std::size_t>(std::find(nodes.begin(), nodes.end(), leader) - nodes.begin());
        std::vector<int> mates = ranks_on(leader);
        std::size_t index = static_cast<std::size_t>(std::find(mates.begin(), mates.end(), rank) - mates.begin());
        std::vector<int> out;
        for (std::size_t k : partner_nodes(node_domains, node, r)) {
            std::vector<int> there = ranks_on(nodes[k]);
            out.push_back(there[index % there.size()]);
        }
        return out;
    };
    partners_ = partners_of(rank_);
    // The ranks that copy to this one: their `ready` is the only one acted on.
    sources_.clear();
    for (int i = 0; i < world_; ++i) {
        auto p = partners_of(i);
        if (i != rank_ && std::find(p.begin(), p.end(), rank_) != p.end()) sources_.push_back(i);
    }
    // Every rank's store size: a `ready` must name bytes inside its
    // sender's store (stores may differ in size: one per node).
    std::uint64_t own = store_->size();
    store_bytes_.assign(static_cast<std::size_t>(world_), 0);
    if (int rc = MPI_Allgather(&own, 1, MPI_UINT64_T, store_bytes_.data(), 1, MPI_UINT64_T, comm_); rc != MPI_SUCCESS) {
        return mpi_error("exchanging store sizes", rc);
    }

    // Watched: the ranks this one copies to and the ranks that copy to it,
    // so a dead node is noticed by its neighbours on both sides.
    if (opts.peer_timeout_ms > 0) {
        std::vector<int> watched(partners_);
        watched.insert(watched.end(), sources_.begin(), sources_.end());
        std::sort(watched.begin(), watched.end());
        watched.erase(std::unique(watched.begin(), watched.end()), watched.end());
        watch_.emplace(std::move(watched), now_ms(), opts.peer_timeout_ms);
    }
    return Status::ok();
}

Checkpointer::~Checkpointer() {
    if (!closed_) (void)close();
}

Status Checkpointer::add_region(const std::string &name, void *ptr, std::size_t bytes) {
    if (closed_) return error(TIERCKPT_ERR_INVALID, "the checkpointer is closed");
    if (name.empty() || name.size() >= store::kRegionNameBytes) {
        return error(TIERCKPT_ERR_INVALID, "region name '{}': give 1 to {} characters", name,
                     store::kRegionNameBytes - 1);
    }
    if (!ptr && bytes) return error(TIERCKPT_ERR_INVALID, "region '{}': null pointer", name);
    if (region_names_.count(name)) return error(TIERCKPT_ERR_INVALID, "region '{}' is registered already", name);
    cuda::PtrInfo mem;
    if (cuda_enabled_ && bytes) mem = cuda::classify(ptr);
    if (mem.device && !stager_) {
        // The first device region: register the store with CUDA (once; the
        // pages get pinned), or fall back to bounce buffers and say why.
        stager_ = std::make_unique<cuda::Stager>();
        const char *force = std::getenv("TIERCKPT_TEST_CUDA_BOUNCE");
        stager_->register_store(store_->base(), store_->size(), force && std::strcmp(force, "1") == 0);
        if (stager_->store_registered()) {
            log::info("rank {}: device regions are staged straight into the node store (cuda-direct)", rank_);
        } else {
            log::warn("rank {}: {}; device regions are staged through pinned bounce buffers (cuda-bounce), at "
                      "memory-copy speed instead of PCIe speed. Check the locked-memory limit (ulimit -l) and that "
                      "the store is on tmpfs or hugetlbfs",
                      rank_, stager_->fallback_reason());
        }
    }
    regions_.push_back({name, ptr, bytes, mem});
    region_names_.insert(name);
    return Status::ok();
}

void Checkpointer::clear_regions() {
    regions_.clear();
    region_names_.clear();
}

cuda::Path Checkpointer::stage_path() const {
    return cuda::choose_path(stager_ != nullptr, stager_ && stager_->store_registered());
}

// Copies the regions back to back to dst (the slot's data, after the
// manifest). Device regions: the application's queued work first, then
// copies that all end before this returns. staged(n): the first n bytes
// at dst have landed (the worker checksums them meanwhile). crash: the
// test hook, half of the first region then exit.
Status Checkpointer::stage_regions(std::uint8_t *dst, bool crash, const std::function<void(std::uint64_t)> &staged) {
    if (stager_) {
        std::vector<int> quiet;
        for (const auto &r : regions_) {
            if (!r.mem.device || std::find(quiet.begin(), quiet.end(), r.mem.device_id) != quiet.end()) continue;
            quiet.push_back(r.mem.device_id);
            if (Status st = stager_->quiesce(r.mem.device_id); !st) return st;
        }
    }
    std::uint64_t off = 0;
    Status st;
    for (const auto &r : regions_) {
        std::size_t n = crash ? r.bytes / 2 : r.bytes;
        bool pending = stager_ && stager_->has_pending();  // queued device copies before this region
        if (r.mem.device) {
            st = stager_->to_host(dst + off, r.ptr, n, r.mem.device_id);
            if (!st) st = error(st.code(), "region '{}' (device {}): {}", r.name, r.mem.device_id, st.message());
        } else if (stage_pieces_) {
            for (const auto &p : cuda::plan_pieces(n, cuda::kPieceBytes)) {
                std::memcpy(dst + off + p.offset, static_cast<const std::uint8_t *>(r.ptr) + p.offset, p.bytes);
                if (!pending) staged(off + p.offset + p.bytes);
            }
        } else {
            std::memcpy(dst + off, r.ptr, n);
        }
        if (!st || crash) break;
        off += r.bytes;
        if (!(stager_ && stager_->has_pending())) staged(off);
    }
    if (stager_) {
        Status fin = stager_->finish([&](const void *end) {
            staged(static_cast<std::uint64_t>(static_cast<const std::uint8_t *>(end) - dst));
        });
        if (st && !fin) st = fin;
    }
    if (crash) ::_exit(86);
    return st;
}

std::uint64_t Checkpointer::payload_bytes() const {
    std::uint64_t n = store::manifest_bytes(regions_.size());
    for (const auto &r : regions_) n += r.bytes;
    return n;
}

void Checkpointer::wake_worker() {
    std::uint64_t one = 1;
    (void)!::write(wake_fd_.get(), &one, sizeof one);
}

// The worker thread: checksums staged shards, tells partners they are
// ready, pulls the shards it keeps for others, collects acknowledgements.
void Checkpointer::worker_loop() {
    for (;;) {
        bool job = false;
        std::function<Status()> task;
        {
            std::lock_guard<std::mutex> lk(mu_);
            if (stop_) break;
            job = std::exchange(work_pending_, false);
            task = std::exchange(task_, nullptr);
        }
        if (job) worker_checksum();
        if (task) {
            Status st = task();
            std::lock_guard<std::mutex> lk(mu_);
            task_status_ = st;
            task_done_ = true;
            cv_.notify_all();
        }
        if (transport_) {
            TransportMsg m;
            while (transport_->poll(m)) handle_msg(m);
            send_heartbeats(false);
            check_peers();
        }
        {
            std::lock_guard<std::mutex> lk(mu_);
            if (inflight_ && inflight_->checksummed && !inflight_->replicated && now_ms() > inflight_->deadline_ms) {
                log::warn("version {}: {} of {} partners acknowledged their copy within {} ms",
                          inflight_->version, inflight_->acks.count(), partners_.size(), replica_timeout_ms_);
                inflight_->replica_failed = true;
                inflight_->replicated = true;
                cv_.notify_all();
            }
            if (stop_ || work_pending_ || task_) continue;
        }
        if (transport_) {
            transport_->wait(wake_fd_.get(), 100);
        } else {
            struct pollfd pfd = {wake_fd_.get(), POLLIN, 0};
            ::poll(&pfd, 1, 1000);
        }
        std::uint64_t drain;
        while (::read(wake_fd_.get(), &drain, sizeof drain) > 0) {
        }
    }
    // Closing on purpose: the watched peers must not take us for dead.
    if (watch_) {
        TransportMsg bye{};
        bye.type = TransportMsg::bye;
        bye.from = static_cast<std::uint32_t>(rank_);
        for (int p : watch_->peers()) (void)transport_->send(p, bye);
    }
}

void Checkpointer::post_worker_task(std::function<Status()> fn) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        task_ = std::move(fn);
        task_done_ = false;
    }
    wake_worker();
}

Status Checkpointer::wait_worker_task() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [this] { return task_done_; });
    return task_status_;
}

Status Checkpointer::pull(int peer, std::uint64_t offset, std::uint8_t *dst, std::uint64_t bytes,
                          std::atomic<std::uint64_t> *progress) {
    Status st;
    const std::uint64_t piece = transport_->pull_piece();
    for (std::uint64_t off = 0; off < bytes && st; off += piece) {
        send_heartbeats(false);
        const std::uint64_t n = std::min<std::uint64_t>(piece, bytes - off);
        Transport::Landed landed;
        if (progress) {
            landed = [this, progress, off](std::uint64_t k) {
                progress->store(off + k);
                cv_.notify_all();
            };
        }
        st = transport_->get(peer, offset + off, dst + off, n, replica_timeout_ms_, landed);
        if (st && landed) landed(n);
    }
    return st;
}

// Heartbeats to the watched peers, at most once an interval (force: now).
// Called between pieces of long work too, so a busy worker still looks
// alive.
void Checkpointer::send_heartbeats(bool force) {
    if (!watch_ || !(watch_->heartbeat_due(now_ms()) || force)) return;
    TransportMsg hb{};
    hb.type = TransportMsg::heartbeat;
    hb.from = static_cast<std::uint32_t>(rank_);
    for (int p : watch_->peers()) (void)transport_->send(p, hb);  // silence is what counts
}

void Checkpointer::check_peers() {
    if (!watch_) return;
    if (auto s = watch_->silent(now_ms())) peer_lost(s->peer, s->silent_ms);
}

// A watched peer is gone (its node died, or its process did without
// closing). Whatever the application's thread is doing (most likely
// blocked in an MPI call to that peer, for as long as TCP takes to give
// up), this step cannot finish: end the process with a status that says
// "relaunch me", at once, rather than after Slurm's node timeout.
void Checkpointer::peer_lost(int peer, double silent_ms) {
    log::error("rank {} on {}: peer rank {} on {} silent for {:.1f} s ({}={}): ending this process with exit "
               "status {} so the step can be relaunched without that node",
               rank_, hosts_[static_cast<std::size_t>(rank_)], peer, hosts_[static_cast<std::size_t>(peer)],
               silent_ms / 1000.0, env::kPeerTimeout, watch_->timeout_ms(), TIERCKPT_EXIT_PEER_LOST);
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(TIERCKPT_EXIT_PEER_LOST);
}

void Checkpointer::worker_checksum() {
    std::uint32_t slot;
    {
        std::lock_guard<std::mutex> lk(mu_);
        slot = inflight_->slot;
    }
    double t0 = 0;  // the first piece checksummed: waiting for the copy is not checksum time
    store::SlotRecord rec = store_->read_record(slot);
    // In pieces, so a large shard does not silence the heartbeats, and
    // behind the copy while save() stages (staged_upto_): the bytes are
    // final once staged. The shard is done only once staging has ended.
    constexpr std::uint64_t kCrcPiece = 256ull << 20;
    std::uint32_t crc = 0;
    std::uint64_t off = 0, behind = 0;  // behind: checksummed while the copy ran
    for (;;) {
        std::uint64_t upto = 0;
        bool staging = false, failed = false;
        {
            std::unique_lock<std::mutex> lk(mu_);
            if (inflight_->staging && staged_upto_ <= off) cv_.wait_for(lk, std::chrono::milliseconds(100));
            staging = inflight_->staging;
            failed = inflight_->staging_failed;
            upto = staging ? staged_upto_ : rec.payload_bytes;
        }
        send_heartbeats(false);
        if (failed) {
            // save() could not stage this shard: vote no, copy nothing.
            std::lock_guard<std::mutex> lk(mu_);
            inflight_->checksummed = true;
            inflight_->worker_ok = false;
            inflight_->replicated = true;
            cv_.notify_all();
            return;
        }
        if (off < upto) {
            if (t0 == 0) t0 = now_ms();
            std::uint64_t n = std::min(kCrcPiece, upto - off);
            // While save() copies, the application waits for it: its cores
            // help the checksum keep up with a GPU's copy, which outruns
            // one thread five times. Afterwards one thread, beside
            // training (on an H200 node the two variants finished equally
            // late: the copy and the threads share the memory's bandwidth).
            const std::uint8_t *piece = store_->base() + rec.offset + off;
            crc = staging ? crc32c_parallel(piece, n, crc_threads_, crc) : crc32c(piece, n, crc);
            off += n;
            if (staging) behind += n;
        } else if (!staging && off >= rec.payload_bytes) {
            break;
        }
    }
    log::debug("version {}: {} of {} bytes checksummed while save() was copying", rec.version, behind,
               rec.payload_bytes);
    rec.payload_crc = crc;
    rec.state = static_cast<std::uint32_t>(store::SlotState::complete);
    store_->write_record(slot, rec);
    double t1 = now_ms();
    if (t0 == 0) t0 = t1;
    bool ok = true;
    for (int p : partners_) {
        TransportMsg m{};
        m.type = TransportMsg::ready;
        m.from = static_cast<std::uint32_t>(rank_);
        m.owner = static_cast<std::uint32_t>(rank_);
        m.version = rec.version;
        m.offset = rec.offset;
        m.bytes = rec.payload_bytes;
        m.crc = rec.payload_crc;
        m.nregions = rec.nregions;
        Status st = transport_->send(p, m);
        if (!st) {
            log::warn("version {}: cannot reach partner rank {}: {}", rec.version, p, st.message());
            ok = false;
        }
    }
    std::lock_guard<std::mutex> lk(mu_);
    stats_.checksum_ms = t1 - t0;
    // The answers this version is owed (handled by this thread, later).
    inflight_->acks = msgcheck::AckTally(rec.version, partners_);
    inflight_->checksummed = true;
    inflight_->worker_ok = true;
    inflight_->t_checksummed = t1;
    inflight_->deadline_ms = t1 + replica_timeout_ms_;
    if (!ok) inflight_->replica_failed = true;
    if (partners_.empty() || !ok) inflight_->replicated = true;
    cv_.notify_all();
}

// A peer's message the checks refuse: told at debug level, and now and
// then at warn level, so a peer sending nonsense cannot flood the log.
void Checkpointer::drop_msg(const TransportMsg &m, const char *why) {
    drops_.report(now_ms(), fmt::format("rank {}: dropped a {} message naming rank {} version {}: {}", rank_,
                                        msgcheck::type_name(m.type), m.from, m.version, why));
}

// Every field a peer sends is checked before use (msg_check.hpp): the
// transports check lengths and, where they can, the sender's address.
void Checkpointer::handle_msg(const TransportMsg &m) {
    const auto world = static_cast<std::uint32_t>(world_), self = static_cast<std::uint32_t>(rank_);
    msgcheck::Reject why = msgcheck::check_header(m, world, self);
    if (!why && m.type == TransportMsg::ready) {
        why = msgcheck::check_ready(m, sources_, store_bytes_[m.from], store_->size());
    } else if (!why && m.type == TransportMsg::done) {
        why = msgcheck::check_done(m, self);
    }
    if (why) return drop_msg(m, why);
    if (watch_) {
        if (m.type == TransportMsg::bye) watch_->left(static_cast<int>(m.from));
        else watch_->heard(static_cast<int>(m.from), now_ms());
    }
    if (m.type == TransportMsg::heartbeat || m.type == TransportMsg::bye) return;
    if (m.type == TransportMsg::done) {
        // Counted once per partner that owes this version an answer.
        msgcheck::AckTally::Outcome outcome;
        {
            std::lock_guard<std::mutex> lk(mu_);
            if (!inflight_) return;  // late: nothing waits for it
            outcome = inflight_->acks.add(m.from, m.version);
            if (outcome == msgcheck::AckTally::Outcome::counted && !inflight_->replicated) {
                if (!m.ok) inflight_->replica_failed = true;
                if (inflight_->acks.complete() || !m.ok) {
                    inflight_->replicated = true;
                    stats_.replicate_ms = now_ms() - inflight_->t_checksummed;
                    stats_.replicas = static_cast<unsigned>(inflight_->acks.count());
                    cv_.notify_all();
                }
            }
        }
        if (outcome == msgcheck::AckTally::Outcome::duplicate) {
            drop_msg(m, "a second answer from this partner for this version");
        } else if (outcome == msgcheck::AckTally::Outcome::not_owed) {
            drop_msg(m, "an answer from a rank that keeps no copy of this rank's shards");
        }
        return;  // other_version: a late answer (after a timeout), harmless
    }
    if (test_hook("TIERCKPT_TEST_IGNORE_REPLICA", m.version, rank_)) return;
    // Keep a copy of another node's shard: pull it, verify it, say so.
    TransportMsg reply{};
    reply.type = TransportMsg::done;
    reply.from = static_cast<std::uint32_t>(rank_);
    reply.owner = m.owner;
    reply.version = m.version;
    Status st;
    std::uint32_t slot = 0;
    for (int attempt = 0; attempt < 2; ++attempt) {
        {
            auto guard = store_->lock();
            auto s = store_->allocate(m.owner, static_cast<std::uint32_t>(world_), m.version, m.bytes, protect_from(),
                                      m.nregions, store::kReplica, rank_);
            if (s) {
                slot = *s;
                st = Status::ok();
                break;
            }
            st = s.status();
        }
        if (!wait_for_flush_slot()) break;
    }
    if (st) {
        store::SlotRecord rec = store_->read_record(slot);
        // Verified after the transfer; a transfer that arrives damaged is
        // tried once more before the copy is given up.
        for (int attempt = 0; attempt < 2; ++attempt) {
            st = pull(static_cast<int>(m.from), m.offset, store_->base() + rec.offset, m.bytes);
            if (st && crc32c(store_->base() + rec.offset, m.bytes) != m.crc) {
                st = error(TIERCKPT_ERR_CORRUPT, "the copy does not match its checksum");
                log::info("replica of rank {} version {}: {} (attempt {})", m.owner, m.version, st.message(),
                          attempt + 1);
                continue;
            }
            break;
        }
        if (st) {
            rec.payload_crc = m.crc;
            rec.state = static_cast<std::uint32_t>(store::SlotState::complete);
            store_->write_record(slot, rec);
        }
    }
    if (!st) log::warn("replica of rank {} version {}: {}", m.owner, m.version, st.message());
    reply.ok = st.is_ok() ? 1 : 0;
    Status sent = transport_->send(static_cast<int>(m.from), reply);
    if (!sent) log::warn("cannot acknowledge rank {}'s version {}: {}", m.from, m.version, sent.message());
}

Status Checkpointer::save(std::uint64_t version) {
    if (closed_) return error(TIERCKPT_ERR_INVALID, "the checkpointer is closed");
    fetched_.reset();  // its slot may be taken now
    if (regions_.empty()) return error(TIERCKPT_ERR_INVALID, "save({}): no region is registered", version);
    double t0 = now_ms();
    // The flusher holds off until the copy below is done: that copy is what
    // training waits for.
    set_staging(true);
    struct Staged {
        Checkpointer *c;
        ~Staged() { c->set_staging(false); }
    } staging_guard{this};
    // A finished flush is settled first, so that the commit below may start
    // the next one. A failed flush is reported in the statistics and logs;
    // training goes on.
    Status flushed = persist_poll(false);
    (void)flushed;
    Status previous;
    if (inflight_) previous = commit_inflight();  // documented: a save waits for the previous one
    double t1 = now_ms();
    if (have_last_ && version <= last_version_) {
        return error(TIERCKPT_ERR_INVALID, "save({}): versions must increase; the last one was {}", version,
                     last_version_);
    }
    std::uint64_t need = payload_bytes();
    std::uint32_t slot = 0;
    Status alloc_error;
    for (int attempt = 0; attempt < 2; ++attempt) {
        {
            auto guard = store_->lock();
            auto s = store_->allocate(static_cast<std::uint32_t>(rank_), static_cast<std::uint32_t>(world_), version,
                                      need, protect_from(), static_cast<std::uint32_t>(regions_.size()));
            if (s) {
                slot = *s;
                alloc_error = Status::ok();
                break;
            }
            alloc_error = s.status();
        }
        // A flush still reading the slot this save would take: wait for it
        // (it shows in wait_ms) rather than fail.
        if (alloc_error.code() != TIERCKPT_ERR_NO_MEMORY) break;
        double w0 = now_ms();
        set_staging(false);  // let the flush finish
        bool waited = wait_for_flush_slot();
        set_staging(true);
        t1 += now_ms() - w0;
        if (!waited) break;
    }
    if (!alloc_error) {
        // Everyone must take part in the vote, even with nothing staged.
        inflight_.emplace();
        inflight_->version = version;
        inflight_->checksummed = true;
        inflight_->worker_ok = false;
        inflight_->replicated = true;
        inflight_->t_start = t0;
        have_last_ = true;
        last_version_ = version;
        stats_ = SaveStats{};
        stats_.version = version;
        return alloc_error;
    }
    store::SlotRecord rec = store_->read_record(slot);
    std::uint8_t *dst = store_->base() + rec.offset;
    // Manifest, then the regions back to back.
    store::ManifestHead head{};
    std::memcpy(head.magic, store::kManifestMagic, sizeof head.magic);
    head.nregions = static_cast<std::uint32_t>(regions_.size());
    std::memcpy(dst, &head, sizeof head);
    std::uint64_t off = sizeof head;
    for (const auto &r : regions_) {
        store::ManifestEntry e{};
        std::memcpy(e.name, r.name.data(), r.name.size());
        e.bytes = r.bytes;
        std::memcpy(dst + off, &e, sizeof e);
        off += sizeof e;
    }
    stats_ = SaveStats{};
    stats_.version = version;
    stats_.bytes = need;
    stats_.wait_ms = t1 - t0;
    have_last_ = true;
    last_version_ = version;
    // The worker starts now and checksums behind the copy: it follows
    // staged_upto_, and finishes the shard only once staging has ended.
    {
        std::lock_guard<std::mutex> lk(mu_);
        inflight_.emplace();
        inflight_->version = version;
        inflight_->slot = slot;
        inflight_->t_start = t1;
        inflight_->staging = true;
        staged_upto_ = off;  // the manifest
        work_pending_ = true;
    }
    wake_worker();
    Status staged = stage_regions(dst + off, crash_requested(version, rank_), [&](std::uint64_t n) {
        std::lock_guard<std::mutex> lk(mu_);
        staged_upto_ = std::max(staged_upto_, off + n);
        cv_.notify_all();
    });
    set_staging(false);  // the flusher may read the store again
    double t2 = now_ms();
    {
        std::lock_guard<std::mutex> lk(mu_);
        stats_.stall_ms = t2 - t1;
        inflight_->staging = false;
        if (staged) staged_upto_ = need;
        else inflight_->staging_failed = true;  // the worker votes no; the slot stays `writing`
        cv_.notify_all();
    }
    if (!staged) return error(staged.code(), "save({}): {}", version, staged.message());
    if (!previous) {
        // This version is staged and in flight; the application still
        // learns, with the previous one's status, that it did not commit.
        return error(previous.code(), "{} (version {} is staged and in flight)", previous.message(), version);
    }
    return Status::ok();
}

Result<bool> Checkpointer::progress(bool block) {
    if (!inflight_) return true;
    InFlight &f = *inflight_;
    if (!f.vote_started) {
        // The vote is a collective: it starts only inside calls every rank
        // makes at the same point of the program (save, wait, close), never
        // from test(), or a rank waiting for it could block another rank
        // that sits in one of the application's own collectives.
        if (!block) return false;
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return f.checksummed && f.replicated; });
        f.local_ok = (f.worker_ok && !f.replica_failed) ? 1 : 0;
        lk.unlock();
        int rc = MPI_Iallreduce(&f.local_ok, &f.global_ok, 1, MPI_INT, MPI_MIN, comm_, &f.req);
        if (rc != MPI_SUCCESS) {
            inflight_.reset();
            return mpi_error("the commit vote (MPI_Iallreduce)", rc);
        }
        f.vote_started = true;
    }
    int done = 0;
    // Blocking: this rank's worker may still be pulling a partner's shard.
    int rc = test_request(f.req, done, block);
    if (block) done = 1;
    if (rc != MPI_SUCCESS) {
        inflight_.reset();
        return mpi_error("the commit vote", rc);
    }
    if (!done) return false;

    std::uint64_t version = f.version;
    bool ok = f.global_ok == 1;
    if (ok) {
        store::SlotRecord rec = store_->read_record(f.slot);
        rec.state = static_cast<std::uint32_t>(store::SlotState::committed);
        store_->write_record(f.slot, rec);
        committed_version_ = version;
        have_committed_ = true;
        protect_from_.store(version);
        if (node_rank_ == 0) store_->set_committed_hint(version);
        stats_.committed = true;
        stats_.commit_ms = now_ms() - f.t_start;
        if (run_report_ && rank_ == 0) {
            std::fprintf(stderr, "tierckpt-report commit version=%llu\n", static_cast<unsigned long long>(version));
            std::fflush(stderr);
        }
        // Every rank sees the same commits, so every rank decides alike.
        if (!persist_dir_.empty() && ++commits_ % persist_every_ == 0) {
            if (flush_outstanding_) {
                ++pstats_.skipped;
                if (rank_ == 0) {
                    log::info("version {} is not flushed: the flush of version {} is still running", version,
                              flush_version_);
                }
            } else {
                start_flush(version, f.slot);
            }
        }
    }
    {
        std::lock_guard<std::mutex> lk(mu_);
        inflight_.reset();
    }
    if (!ok) {
        return error(TIERCKPT_ERR_PEER,
                     "version {} did not commit: a rank could not stage its shard or a partner node did not "
                     "acknowledge its copy; version {} stays the newest committed",
                     version, have_committed_ ? std::to_string(committed_version_) : std::string("(none)"));
    }
    return true;
}

Result<bool> Checkpointer::test() { return progress(false); }

Status Checkpointer::commit_inflight() {
    auto r = progress(true);
    if (!r) return r.status();
    return Status::ok();
}

Status Checkpointer::wait() {
    Status flushed = persist_poll(false);
    (void)flushed;  // a failed flush is reported in the statistics and logs, not here
    return commit_inflight();
}

Result<bool> Checkpointer::agree(bool ok) {
    int mine = ok ? 1 : 0, all = 0;
    int rc = MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm_);
    if (rc != MPI_SUCCESS) return mpi_error("agreeing (MPI_Allreduce)", rc);
    return all == 1;
}

// ---- the persistent tier ---------------------------------------------------

void Checkpointer::start_flush(std::uint64_t version, std::uint32_t slot) {
    store::SlotRecord rec = store_->read_record(slot);
    flush_protect_.store(version);
    flush_outstanding_ = true;
    flush_version_ = version;
    flush_bytes_ = rec.payload_bytes;
    flush_crc_ = rec.payload_crc;
    {
        std::lock_guard<std::mutex> lk(fmu_);
        flush_job_ = FlushJob{version, slot, rec.payload_bytes, rec.payload_crc};
        flush_done_ = false;
        flush_status_ = Status::ok();
    }
    fcv_.notify_all();
}

// The flusher thread: writes this rank's shard of a committed version from
// the node store to the persistent directory. No MPI; the manifest is
// written by rank 0 in a later collective call (persist_poll).
void Checkpointer::flusher_loop() {
    for (;;) {
        FlushJob job;
        {
            std::unique_lock<std::mutex> lk(fmu_);
            fcv_.wait(lk, [&] { return flush_stop_ || flush_job_.has_value(); });
            if (!flush_job_) return;
            job = *flush_job_;
            flush_job_.reset();
        }
        // Between writes (and before the first) the flush yields to a save
        // copying into the store: the copy is what training waits for.
        auto hold = [this] {
            if (!staging_.load(std::memory_order_acquire)) return;
            std::unique_lock<std::mutex> lk(fmu_);
            fcv_.wait(lk, [&] { return !staging_.load() || flush_stop_; });
        };
        hold();
        Status st;
        persist::WriteStats ws;
        auto dir = persist::Dir::open(persist_dir_, true);
        if (!dir) {
            st = dir.status();
        } else {
            store::SlotRecord rec = store_->read_record(job.slot);
            persist::ShardMeta meta;
            meta.rank = static_cast<std::uint32_t>(rank_);
            meta.world = static_cast<std::uint32_t>(world_);
            meta.version = job.version;
            meta.bytes = job.bytes;
            meta.crc = job.crc;
            meta.job_id = job_id_;
            if (!store::StoreFile::record_valid(rec) || rec.version != job.version || rec.payload_crc != job.crc) {
                st = error(TIERCKPT_ERR_INTERNAL, "the slot of version {} changed before its flush", job.version);
            } else {
                // The slot is protected (flush_protect_) until this returns.
                st = dir->write_shard(meta, store_->base() + rec.offset, rec.capacity, false, &ws, hold);
            }
        }
        flush_protect_.store(~0ull);
        if (!st) {
            log::warn("rank {}: flush of version {} to {} failed: {}", rank_, job.version, persist_dir_, st.message());
        } else {
            log::debug("rank {}: flushed version {} ({} bytes, {:.1f} ms{})", rank_, job.version, job.bytes, ws.ms,
                       ws.direct ? ", O_DIRECT" : "");
        }
        {
            std::lock_guard<std::mutex> lk(fmu_);
            flush_status_ = st;
            flush_ms_ = ws.ms;
            flush_done_ = true;
        }
        fcv_.notify_all();
    }
}

void Checkpointer::set_staging(bool on) {
    if (persist_dir_.empty()) return;
    if (on) {
        staging_.store(true, std::memory_order_release);
        return;
    }
    if (!staging_.load(std::memory_order_acquire)) return;
    {
        std::lock_guard<std::mutex> lk(fmu_);  // no lost wake-up against hold()
        staging_.store(false, std::memory_order_release);
    }
    fcv_.notify_all();
}

bool Checkpointer::wait_for_flush_slot() {
    if (persist_dir_.empty() || flush_protect_.load() == ~0ull) return false;
    std::unique_lock<std::mutex> lk(fmu_);
    fcv_.wait(lk, [&] { return flush_done_ || flush_stop_; });
    return true;
}

Status Checkpointer::persist_poll(bool block) {
    if (!flush_outstanding_) return Status::ok();
    struct Report {
        std::uint32_t done;
        std::uint32_t code;
        std::uint64_t bytes;
        std::uint32_t crc;
        std::uint32_t pad;
    } mine{};
    double ms = 0;
    {
        std::unique_lock<std::mutex> lk(fmu_);
        if (block) fcv_.wait(lk, [&] { return flush_done_; });
        mine.done = flush_done_ ? 1 : 0;
        mine.code = static_cast<std::uint32_t>(flush_status_.code());
        ms = flush_ms_;
    }
    // Bytes and CRC of this rank's shard, as the manifest lists them
    // (recorded when the flush started: the slot may be reused since).
    mine.bytes = flush_bytes_;
    mine.crc = flush_crc_;
    std::vector<Report> all(static_cast<std::size_t>(world_));
    int rc = MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all.data(), sizeof mine, MPI_BYTE, comm_);
    if (rc != MPI_SUCCESS) return mpi_error("the flush report (MPI_Allgather)", rc);
    for (const auto &r : all) {
        if (!r.done) return Status::ok();  // not yet everywhere: ask again in the next collective call
    }
    const std::uint64_t version = flush_version_;
    flush_outstanding_ = false;
    int failed_rank = -1;
    tierckpt_status_t failed_code = TIERCKPT_OK;
    for (int r = 0; r < world_; ++r) {
        if (all[static_cast<std::size_t>(r)].code != TIERCKPT_OK && failed_rank < 0) {
            failed_rank = r;
            failed_code = static_cast<tierckpt_status_t>(all[static_cast<std::size_t>(r)].code);
        }
    }
    // Rank 0 makes the version visible (or clears what a failed flush left).
    int outcome = TIERCKPT_OK;
    std::string why;
    if (rank_ == 0) {
        auto dir = persist::Dir::open(persist_dir_, false);
        Status st = dir ? Status::ok() : dir.status();
        if (st && failed_rank < 0) {
            persist::Manifest m;
            m.version = version;
            m.world = static_cast<std::uint32_t>(world_);
            m.job_id = job_id_;
            m.shards.resize(all.size());
            for (std::size_t r = 0; r < all.size(); ++r) m.shards[r] = {all[r].bytes, all[r].crc, true};
            st = dir->write_manifest(m);
            if (st) {
                Status kept = dir->retain(persist_keep_);
                if (!kept) log::warn("persistent tier {}: retention: {}", persist_dir_, kept.message());
            }
        }
        if (failed_rank >= 0 || !st) {
            if (dir) {
                Status rm = dir->remove_version(version);  // incomplete: nothing of value
                if (!rm) log::warn("{}", rm.message());
            }
            outcome = failed_rank >= 0 ? failed_code : st.code();
            why = failed_rank >= 0 ? fmt::format("rank {} could not write its shard ({}; see its log)", failed_rank,
                                                 tierckpt_status_string(failed_code))
                                   : st.message();
            log::error("flush of version {} to {} failed: {}; version {} stays the newest there", version,
                       persist_dir_, why,
                       pstats_.version ? std::to_string(pstats_.version) : std::string("(none of this job)"));
        }
    }
    rc = MPI_Bcast(&outcome, 1, MPI_INT, 0, comm_);
    if (rc != MPI_SUCCESS) return mpi_error("the flush outcome (MPI_Bcast)", rc);
    pstats_.ms = ms;
    pstats_.bytes = mine.bytes;
    pstats_.status = static_cast<tierckpt_status_t>(outcome);
    if (outcome == TIERCKPT_OK) {
        pstats_.version = version;
        return Status::ok();
    }
    ++pstats_.failures;
    return error(static_cast<tierckpt_status_t>(outcome), "flush of version {} to {} failed{}", version, persist_dir_,
                 why.empty() ? "" : ": " + why);
}

Status Checkpointer::match_regions(const std::vector<store::RegionEntry> &entries) const {
    if (entries.size() != regions_.size()) {
        return error(TIERCKPT_ERR_INVALID, "the checkpoint has {} regions, {} are registered", entries.size(),
                     regions_.size());
    }
    for (std::size_t i = 0; i < regions_.size(); ++i) {
        const auto &e = entries[i];
        const auto &r = regions_[i];
        if (e.name != r.name || e.bytes != r.bytes) {
            return error(TIERCKPT_ERR_INVALID,
                         "the checkpoint's region '{}' ({} bytes) does not match the registered region '{}' ({} bytes)",
                         e.name, e.bytes, r.name, r.bytes);
        }
    }
    return Status::ok();
}

Status Checkpointer::copy_into_regions(const std::uint8_t *payload) {
    std::uint64_t off = store::manifest_bytes(regions_.size());
    Status st;
    for (const auto &r : regions_) {
        if (r.mem.device) {
            st = stager_->to_device(r.ptr, payload + off, r.bytes, r.mem.device_id);
            if (!st) {
                st = error(st.code(), "region '{}' (device {}): {}", r.name, r.mem.device_id, st.message());
                break;
            }
        } else {
            std::memcpy(r.ptr, payload + off, r.bytes);
        }
        off += r.bytes;
    }
    if (stager_) {
        Status fin = stager_->finish();
        if (st && !fin) st = fin;
    }
    return st;
}

Status Checkpointer::unpack(const std::uint8_t *payload, std::uint64_t bytes, std::uint32_t crc, bool crc_checked,
                            std::vector<std::uint8_t> *owner) {
    if (!crc_checked && crc32c_parallel(payload, bytes, crc_threads_) != crc) {
        return error(TIERCKPT_ERR_CORRUPT, "checksum mismatch");
    }
    auto entries = store::parse_shard_manifest(payload, bytes);
    if (!entries) return entries.status();
    if (fetch_only_) {
        Fetched f;
        if (owner) {
            f.owned = std::move(*owner);
            payload = f.owned.data();  // a moved vector keeps its buffer
        }
        f.payload = payload;
        f.bytes = bytes;
        f.crc = crc;
        std::uint64_t off = store::manifest_bytes(entries->size());
        f.regions.reserve(entries->size());
        for (auto &e : *entries) {
            f.by_name.emplace(e.name, f.regions.size());
            f.regions.push_back({std::move(e.name), e.bytes, off});
            off += e.bytes;
        }
        fetched_ = std::move(f);
        return Status::ok();
    }
    if (Status st = match_regions(*entries); !st) return st;
    return copy_into_regions(payload);
}

Status Checkpointer::restore_attempt(const std::vector<InventoryEntry> &inv, const std::vector<int> &plan,
                                     std::uint64_t version, const persist::ShardEntry &pentry, int &bad_entry,
                                     bool &persist_bad, Source &source) {
    bad_entry = -1;
    persist_bad = false;
    const double t_begin = now_ms();
    const int my_plan = plan[static_cast<std::size_t>(rank_)];
    const bool from_disk = my_plan < 0;
    static const InventoryEntry kNone{};
    const InventoryEntry &mine = from_disk ? kNone : inv[static_cast<std::size_t>(my_plan)];
    restored_bytes_ = from_disk ? pentry.bytes : mine.payload_bytes;
    bool local = !from_disk && static_cast<int>(mine.holder) == leader_of_[static_cast<std::size_t>(rank_)];
    source = from_disk ? Source::persistent : local ? Source::local : Source::peer;
    restored_via_ = from_disk ? "file" : local ? "store" : "mpi";

    // A shard on another node comes over the transport when the job has
    // one: the worker reads it from the holder's registered store straight
    // into a slot of this node's store (registered too), which keeps it as a
    // copy afterwards. Only free room is taken, never an older version's
    // slot: if this version fails, an older one may need it. Without a
    // transport (no replicas) or room, the holder sends the shard over MPI.
    std::optional<std::uint32_t> pull_slot;
    if (transport_ && !local && !from_disk) {
        auto guard = store_->lock();
        auto s = store_->allocate(static_cast<std::uint32_t>(rank_), static_cast<std::uint32_t>(world_), mine.version,
                                  mine.payload_bytes, 0, mine.nregions, store::kReplica, rank_);
        if (s) {
            pull_slot = *s;
        } else {
            log::info("restore: rank {}: {}; fetching the shard over MPI instead of {}", rank_, s.status().message(),
                      transport_->name());
        }
    }
    std::vector<int> pulls(static_cast<std::size_t>(world_), 0);
    if (transport_) {
        int me = pull_slot ? 1 : 0;
        int rc = MPI_Allgather(&me, 1, MPI_INT, pulls.data(), 1, MPI_INT, comm_);
        if (rc != MPI_SUCCESS) return mpi_error("restore (who reads over the transport)", rc);
    }
    std::uint8_t *pull_dst = nullptr;
    if (pull_slot) {
        pull_dst = store_->base() + store_->read_record(*pull_slot).offset;
        // Every rank on the holder's node registered the same store: the
        // readers are spread over their workers, which serve in parallel.
        std::vector<int> servers = ranks_on(static_cast<int>(mine.holder));
        int server = servers[static_cast<std::size_t>(rank_) % servers.size()];
        pulled_.store(0);
        post_worker_task([this, server, off = mine.offset, dst = pull_dst, n = mine.payload_bytes] {
            return pull(server, off, dst, n, &pulled_);
        });
        restored_via_ = transport_->name();
    }
    const bool by_mpi = !local && !from_disk && !pull_slot;

    // Over MPI, holders verify what they send; the header says whether it
    // is good.
    struct Header {
        std::uint64_t ok;
        std::uint64_t bytes;
    };
    std::vector<MPI_Request> reqs;
    std::vector<Header> send_heads;
    std::vector<int> send_to;
    for (int r = 0; r < world_; ++r) {
        if (plan[static_cast<std::size_t>(r)] < 0) continue;  // reads the persistent tier
        if (pulls[static_cast<std::size_t>(r)]) continue;     // reads over the transport
        const InventoryEntry &e = inv[static_cast<std::size_t>(plan[static_cast<std::size_t>(r)])];
        if (static_cast<int>(e.holder) != rank_ || leader_of_[static_cast<std::size_t>(r)] == rank_) continue;
        send_to.push_back(r);
    }
    send_heads.resize(send_to.size());
    for (std::size_t i = 0; i < send_to.size(); ++i) {
        const InventoryEntry &e = inv[static_cast<std::size_t>(plan[static_cast<std::size_t>(send_to[i])])];
        store::SlotRecord rec = store_->read_record(e.slot);
        bool good = store::StoreFile::record_valid(rec) && rec.version == e.version && rec.rank == e.rank &&
                    crc32c(store_->base() + rec.offset, e.payload_bytes) == e.crc;
        send_heads[i] = {good ? 1u : 0u, e.payload_bytes};
        reqs.emplace_back();
        MPI_Isend(&send_heads[i], sizeof(Header), MPI_BYTE, send_to[i], kTagHeader, comm_, &reqs.back());
    }
    Header my_head{0, 0};
    if (by_mpi) {
        reqs.emplace_back();
        MPI_Irecv(&my_head, sizeof my_head, MPI_BYTE, static_cast<int>(mine.holder), kTagHeader, comm_, &reqs.back());
    }
    int rc = MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE);
    reqs.clear();

    // The payloads, in chunks, straight from the holder's store mapping.
    std::vector<std::uint8_t> buffer;
    if (rc == MPI_SUCCESS) {
        for (std::size_t i = 0; i < send_to.size(); ++i) {
            if (!send_heads[i].ok) continue;
            const InventoryEntry &e = inv[static_cast<std::size_t>(plan[static_cast<std::size_t>(send_to[i])])];
            const std::uint8_t *src = store_->base() + store_->read_record(e.slot).offset;
            for (std::uint64_t off = 0; off < e.payload_bytes; off += kChunk) {
                reqs.emplace_back();
                MPI_Isend(src + off, static_cast<int>(std::min(kChunk, e.payload_bytes - off)), MPI_BYTE, send_to[i],
                          kTagData, comm_, &reqs.back());
            }
        }
        if (by_mpi && my_head.ok) {
            buffer.resize(my_head.bytes);
            for (std::uint64_t off = 0; off < my_head.bytes; off += kChunk) {
                reqs.emplace_back();
                MPI_Irecv(buffer.data() + off, static_cast<int>(std::min(kChunk, my_head.bytes - off)), MPI_BYTE,
                          static_cast<int>(mine.holder), kTagData, comm_, &reqs.back());
            }
        }
    }
    int rc_data = rc == MPI_SUCCESS ? MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE)
                                    : MPI_SUCCESS;
    // The worker's read ends (or times out) before anything returns: it
    // writes into the store.
    // The checksum runs behind the transfer, on the bytes landed so far,
    // with the threads of the checksums the application waits for.
    std::uint32_t pulled_crc = 0;
    std::uint64_t checked = 0;
    auto check_upto = [&](std::uint64_t upto) {
        if (upto <= checked) return;
        pulled_crc = crc32c_parallel(pull_dst + checked, upto - checked, crc_threads_, pulled_crc);
        checked = upto;
    };
    Status pulled;
    if (pull_slot) {
        for (bool done = false; !done;) {
            {
                std::unique_lock<std::mutex> lk(mu_);
                // A timed wait: the worker notifies without the lock.
                cv_.wait_for(lk, std::chrono::milliseconds(1), [&] { return task_done_ || pulled_.load() > checked; });
                done = task_done_;
            }
            check_upto(std::min<std::uint64_t>(pulled_.load(), mine.payload_bytes));
        }
        pulled = wait_worker_task();
        if (pulled) check_upto(mine.payload_bytes);
        if (pulled && pulled_crc != mine.crc) pulled = error(TIERCKPT_ERR_CORRUPT, "checksum mismatch");
    }
    const double t_moved = now_ms();
    if (rc != MPI_SUCCESS) return mpi_error("restore (headers)", rc);
    if (rc_data != MPI_SUCCESS) return mpi_error("restore (data)", rc_data);

    Status st;
    if (from_disk) {
        auto dir = persist::Dir::open(persist_dir_, false);
        if (!dir) {
            st = dir.status();
        } else if (!fetch_only_ && pentry.bytes != payload_bytes()) {
            // Checked before reading: the manifest's size is what would be
            // allocated, and a shard of another size cannot fit the regions.
            st = error(TIERCKPT_ERR_INVALID, "its manifest says {} bytes, the registered regions make {}",
                       pentry.bytes, payload_bytes());
        } else {
            auto bytes = dir->read_shard(version, static_cast<std::uint32_t>(rank_), pentry);
            if (!bytes) {
                st = bytes.status();
            } else {
                st = unpack(bytes->data(), bytes->size(), pentry.crc, false, &*bytes);
            }
        }
        if (!st && st.code() != TIERCKPT_ERR_INVALID) persist_bad = true;
        if (!st) {
            st = error(st.code(), "rank {}: shard of version {} from the persistent tier: {}", rank_, version,
                       st.message());
        }
        return st;
    }
    if (local) {
        store::SlotRecord rec = store_->read_record(mine.slot);
        if (!store::StoreFile::record_valid(rec) || rec.version != mine.version || rec.rank != mine.rank) {
            st = error(TIERCKPT_ERR_CORRUPT, "the slot changed under restore");
        } else {
            st = unpack(store_->base() + rec.offset, mine.payload_bytes, mine.crc);
            if (st && fetch_only_) fetched_->slot = HeldSlot{mine.slot, mine.version, mine.rank};
        }
    } else if (pull_slot) {
        st = pulled ? unpack(pull_dst, mine.payload_bytes, mine.crc, true) : pulled;
        if (st && fetch_only_) {
            fetched_->slot = HeldSlot{*pull_slot, mine.version, static_cast<std::uint32_t>(rank_)};
        }
        log::debug("restore: rank {}: {} bytes from rank {}'s node over {}: moved and verified in {:.1f} ms, copied "
                   "into the regions in {:.1f} ms (since the attempt began: {:.1f} ms)",
                   rank_, mine.payload_bytes, mine.holder, restored_via_, t_moved - t_begin, now_ms() - t_moved,
                   now_ms() - t_begin);
        if (st || st.code() == TIERCKPT_ERR_INVALID) {
            // Intact (the checksum matched): this node keeps the copy.
            store::SlotRecord rec = store_->read_record(*pull_slot);
            rec.payload_crc = mine.crc;
            rec.state = static_cast<std::uint32_t>(store::SlotState::complete);
            store_->write_record(*pull_slot, rec);
        }
    } else if (!my_head.ok) {
        st = error(TIERCKPT_ERR_CORRUPT, "the holder found the copy corrupt");
    } else {
        st = unpack(buffer.data(), my_head.bytes, mine.crc, false, &buffer);
    }
    // A copy that is damaged, or that the transport cannot reach, is left
    // out of the next plan.
    if (!st && (st.code() == TIERCKPT_ERR_CORRUPT || (pull_slot && st.code() != TIERCKPT_ERR_INVALID))) {
        bad_entry = my_plan;
    }
    if (!st) {
        st = error(st.code(), "rank {}: shard of version {} from {}: {}", rank_, mine.version,
                   local ? std::string("this node's store")
                         : fmt::format("rank {}'s node over {}", mine.holder, restored_via_),
                   st.message());
    }
    return st;
}

Result<RestoreResult> Checkpointer::restore() {
    double t0 = now_ms();
    if (fetched_) {
        double fetch_ms = fetched_->ms;
        auto r = restore_fetched();
        if (r && run_report_) report_restore(*r, fetch_ms + now_ms() - t0);
        return r;
    }
    restored_bytes_ = 0;
    auto r = restore_newest();
    if (r && run_report_) report_restore(*r, now_ms() - t0);
    return r;
}

Result<RestoreResult> Checkpointer::fetch() {
    if (closed_) return error(TIERCKPT_ERR_INVALID, "the checkpointer is closed");
    double t0 = now_ms();
    fetched_.reset();
    restored_bytes_ = 0;
    // fetch_only_ holds for this restore_newest alone, whatever leaves it.
    struct FetchMode {
        bool &on;
        explicit FetchMode(bool &flag) : on(flag) { on = true; }
        ~FetchMode() { on = false; }
    };
    auto r = [&] {
        FetchMode mode(fetch_only_);
        return restore_newest();
    }();
    if (!r || !r->found) {
        fetched_.reset();
        return r;
    }
    fetched_->version = r->version;
    fetched_->source = r->source;
    fetched_->ms = now_ms() - t0;
    return r;
}

Result<RestoreResult> Checkpointer::restore_fetched() {
    if (inflight_) return error(TIERCKPT_ERR_INVALID, "restore: a save is in flight; wait for it first");
    Fetched f = std::move(*fetched_);
    fetched_.reset();
    // Every rank takes part in both agreements below, whatever it found:
    // first that every rank's regions match its shard (nothing is written
    // anywhere unless all do), then that every copy succeeded.
    Status st;
    if (regions_.empty()) {
        st = error(TIERCKPT_ERR_INVALID, "restore: no region is registered");
    } else {
        std::vector<store::RegionEntry> entries;
        entries.reserve(f.regions.size());
        for (const auto &r : f.regions) entries.push_back({r.name, r.bytes});
        st = match_regions(entries);
    }
    if (st && f.slot) {
        // The shard lies in this node's store: the slot must still be the
        // one fetched (only a save could take it, and a save drops it).
        store::SlotRecord rec = store_->read_record(f.slot->slot);
        if (!store::StoreFile::record_valid(rec) || rec.version != f.slot->version || rec.rank != f.slot->rank ||
            store_->base() + rec.offset != f.payload) {
            st = error(TIERCKPT_ERR_CORRUPT, "the slot of the fetched shard changed before the restore");
        }
    }
    if (!allreduce_min_yielding(comm_, st.is_ok() ? 1 : 0)) {
        if (st) return error(TIERCKPT_ERR_INVALID, "restore: another rank's regions do not match the checkpoint");
        log::info("restore: {}", st.message());
        return st;
    }
    st = copy_into_regions(f.payload);
    if (!allreduce_min_yielding(comm_, st.is_ok() ? 1 : 0)) {
        // Written in part (a device copy failed here or on another rank).
        if (st) return error(TIERCKPT_ERR_INTERNAL, "restore: another rank could not copy its shard into its regions");
        log::warn("restore: {}", st.message());
        return st;
    }
    committed_version_ = f.version;
    have_committed_ = true;
    protect_from_.store(f.version);
    last_version_ = f.version;
    have_last_ = true;
    return RestoreResult{true, f.version, f.source};
}

Result<const std::vector<Checkpointer::FetchedRegion> *> Checkpointer::fetched_regions() const {
    if (!fetched_) return error(TIERCKPT_ERR_NOT_FOUND, "no fetched checkpoint is held: fetch one first");
    return &fetched_->regions;
}

Status Checkpointer::read_fetched(const std::string &name, std::uint64_t offset, void *dst,
                                  std::uint64_t bytes) const {
    if (auto held = fetched_regions(); !held) return held.status();
    auto it = fetched_->by_name.find(name);
    if (it == fetched_->by_name.end()) {
        return error(TIERCKPT_ERR_NOT_FOUND, "the fetched checkpoint (version {}) has no region '{}'",
                     fetched_->version, name);
    }
    const FetchedRegion &r = fetched_->regions[it->second];
    if (offset > r.bytes || bytes > r.bytes - offset) {
        return error(TIERCKPT_ERR_INVALID, "region '{}' of the fetched checkpoint holds {} bytes; {} from offset {} "
                     "lie beyond it", name, r.bytes, bytes, offset);
    }
    if (bytes && !dst) return error(TIERCKPT_ERR_INVALID, "read of region '{}': null destination", name);
    if (bytes) std::memcpy(dst, fetched_->payload + r.offset + offset, bytes);
    return Status::ok();
}

// One line per rank for tierckpt run's recovery account (TIERCKPT_RUN_REPORT=1).
void Checkpointer::report_restore(const RestoreResult &r, double ms) const {
    std::fprintf(stderr, "tierckpt-report restore rank=%d node=%s version=%llu source=%s bytes=%llu ms=%.1f via=%s\n", rank_,
                 hosts_[static_cast<std::size_t>(rank_)].c_str(), static_cast<unsigned long long>(r.version),
                 source_name(r.source), static_cast<unsigned long long>(restored_bytes_), ms,
                 restored_via_);
    std::fflush(stderr);
}

Result<RestoreResult> Checkpointer::restore_newest() {
    if (closed_) return error(TIERCKPT_ERR_INVALID, "the checkpointer is closed");
    if (inflight_) return error(TIERCKPT_ERR_INVALID, "restore: a save is in flight; wait for it first");
    if (regions_.empty() && !fetch_only_) return error(TIERCKPT_ERR_INVALID, "restore: no region is registered");

    // 1. Inventory: each node's leader lists its store.
    std::vector<InventoryEntry> mine;
    std::uint64_t other_world = 0;
    if (node_rank_ == 0) {
        for (const auto &s : store_->shards()) {
            if (s.rec.world != static_cast<std::uint32_t>(world_)) {
                other_world = s.rec.world;
                continue;
            }
            bool committed = s.rec.state == static_cast<std::uint32_t>(store::SlotState::committed);
            mine.push_back({s.rec.version, s.rec.payload_bytes, s.rec.rank, static_cast<std::uint32_t>(rank_), s.slot,
                            s.rec.payload_crc, committed ? 1u : 0u, s.rec.nregions, s.rec.offset});
        }
    }
    auto gathered = allgather_bytes(comm_, mine.data(), mine.size() * sizeof(InventoryEntry), "restore (inventory)");
    if (!gathered) return gathered.status();
    std::vector<InventoryEntry> inv;
    for (const auto &part : *gathered) {
        std::size_t at = inv.size();
        inv.resize(at + part.size() / sizeof(InventoryEntry));
        std::memcpy(inv.data() + at, part.data(), part.size());
    }
    std::uint64_t any_other_world = 0;
    MPI_Allreduce(&other_world, &any_other_world, 1, MPI_UINT64_T, MPI_MAX, comm_);

    // 1b. The persistent tier: rank 0 lists its complete versions.
    std::set<std::uint64_t> pgood;
    std::uint64_t pother[2] = {0, 0};  // newest complete version of another world size, and that size
    if (!persist_dir_.empty()) {
        std::vector<std::uint64_t> pv;
        if (rank_ == 0) {
            auto dir = persist::Dir::open(persist_dir_, false);
            auto all = dir ? dir->list() : Result<std::vector<persist::VersionInfo>>(dir.status());
            if (!all) {
                if (all.status().code() != TIERCKPT_ERR_NOT_FOUND) log::warn("restore: {}", all.status().message());
            } else {
                for (const auto &vi : *all) {
                    if (!vi.complete) continue;
                    if (vi.manifest.world == static_cast<std::uint32_t>(world_)) {
                        pv.push_back(vi.version);
                    } else if (vi.version >= pother[0]) {
                        pother[0] = vi.version;
                        pother[1] = vi.manifest.world;
                    }
                }
            }
        }
        std::uint64_t n = pv.size();
        MPI_Bcast(&n, 1, MPI_UINT64_T, 0, comm_);
        pv.resize(n);
        MPI_Bcast(pv.data(), static_cast<int>(n), MPI_UINT64_T, 0, comm_);
        MPI_Bcast(pother, 2, MPI_UINT64_T, 0, comm_);
        pgood.insert(pv.begin(), pv.end());
    }

    // 2. Newest version complete across the job (in memory, or in the
    // persistent tier for the shards memory lacks), then its copies, best
    // first.
    std::set<std::uint64_t, std::greater<>> versions(pgood.begin(), pgood.end());
    std::optional<std::uint64_t> newest_committed;
    for (const auto &e : inv) {
        versions.insert(e.version);
        if (e.committed && (!newest_committed || e.version > *newest_committed)) newest_committed = e.version;
    }
    // The ranks with no usable copy of version v.
    auto lost_ranks = [&](std::uint64_t v, const std::vector<char> &bad) {
        std::vector<char> have(static_cast<std::size_t>(world_), 0);
        for (std::size_t i = 0; i < inv.size(); ++i) {
            if (inv[i].version == v && !bad[i] && inv[i].rank < static_cast<std::uint32_t>(world_)) have[inv[i].rank] = 1;
        }
        std::string list;
        for (int r = 0; r < world_; ++r) {
            if (!have[static_cast<std::size_t>(r)]) list += (list.empty() ? "" : ",") + std::to_string(r);
        }
        return list;
    };
    std::vector<char> bad(inv.size(), 0);
    Status last_error;
    for (std::uint64_t v : versions) {
        for (int attempt = 0; attempt < 8; ++attempt) {
            std::vector<int> plan(static_cast<std::size_t>(world_), -1);
            for (std::size_t i = 0; i < inv.size(); ++i) {
                const auto &e = inv[i];
                if (e.version != v || bad[i] || e.rank >= static_cast<std::uint32_t>(world_)) continue;
                int &p = plan[e.rank];
                bool here = static_cast<int>(e.holder) == leader_of_[e.rank];
                if (p < 0 || (here && static_cast<int>(inv[static_cast<std::size_t>(p)].holder) != leader_of_[e.rank])) {
                    p = static_cast<int>(i);
                }
            }
            bool missing = std::find(plan.begin(), plan.end(), -1) != plan.end();
            if (missing && !pgood.count(v)) break;  // incomplete: older version
            struct PEntry {
                std::uint64_t bytes;
                std::uint32_t crc;
                std::uint32_t pad;
            } my_pe{0, 0, 0};
            if (missing) {
                // Rank 0 reads the manifest; each rank gets its shard's line.
                std::vector<PEntry> pes;
                int ok = 1;
                if (rank_ == 0) {
                    auto dir = persist::Dir::open(persist_dir_, false);
                    auto m = dir ? dir->read_manifest(v) : Result<persist::Manifest>(dir.status());
                    if (!m || m->world != static_cast<std::uint32_t>(world_)) {
                        ok = 0;
                        log::warn("restore: version {} in {}: {}", v, persist_dir_,
                                  m ? std::string("another world size") : m.status().message());
                    } else {
                        for (const auto &e : m->shards) pes.push_back({e.bytes, e.crc, 0});
                    }
                }
                MPI_Bcast(&ok, 1, MPI_INT, 0, comm_);
                if (!ok) {
                    pgood.erase(v);
                    continue;  // plans again without the persistent copy: breaks out
                }
                MPI_Scatter(pes.data(), sizeof(PEntry), MPI_BYTE, &my_pe, sizeof(PEntry), MPI_BYTE, 0, comm_);
            }
            persist::ShardEntry pentry{my_pe.bytes, my_pe.crc, missing};
            // Regions that cannot match (another count) are refused before
            // any byte moves: a probe with fewer regions (tierckpt.torch
            // asks with its small-object region alone) must not fetch
            // whole shards from peers.
            const int my_plan = plan[static_cast<std::size_t>(rank_)];
            const std::uint32_t shard_regions = my_plan >= 0 ? inv[static_cast<std::size_t>(my_plan)].nregions : 0;
            int count_bad = !fetch_only_ && my_plan >= 0 && shard_regions != regions_.size() ? 1 : 0,
                any_count_bad = 0;
            MPI_Allreduce(&count_bad, &any_count_bad, 1, MPI_INT, MPI_MAX, comm_);
            if (any_count_bad) {
                Status st = count_bad ? error(TIERCKPT_ERR_INVALID, "the checkpoint has {} regions, {} are registered",
                                              shard_regions, regions_.size())
                                      : error(TIERCKPT_ERR_INVALID,
                                              "restore: another rank's regions do not match the checkpoint");
                log::info("restore: {}", st.message());
                return st;
            }
            Source source = Source::none;
            int bad_entry = -1;
            bool persist_bad = false;
            Status st = restore_attempt(inv, plan, v, pentry, bad_entry, persist_bad, source);
            int all_ok = allreduce_min_yielding(comm_, st.is_ok() ? 1 : 0);
            if (all_ok) {
                if (newest_committed && v < *newest_committed && rank_ == 0) {
                    log::warn("restore: version {} was committed but rank(s) {} have no copy of it left in any node "
                              "store; restored the older version {}",
                              *newest_committed, lost_ranks(*newest_committed, bad), v);
                }
                if (fetch_only_) return RestoreResult{true, v, source};  // restore() settles the rest
                committed_version_ = v;
                have_committed_ = true;
                protect_from_.store(v);
                last_version_ = v;
                have_last_ = true;
                return RestoreResult{true, v, source};
            }
            if (!st) {
                // Regions that do not match the checkpoint are the caller's
                // error, returned to it: no warning of our own.
                if (st.code() == TIERCKPT_ERR_INVALID) log::info("restore: {}", st.message());
                else log::warn("restore: {}", st.message());
                last_error = st;
            }
            // Drop the copies found bad and plan again.
            std::vector<int> bads(static_cast<std::size_t>(world_));
            MPI_Allgather(&bad_entry, 1, MPI_INT, bads.data(), 1, MPI_INT, comm_);
            bool any = false;
            int pbad = persist_bad ? 1 : 0, any_pbad = 0;
            MPI_Allreduce(&pbad, &any_pbad, 1, MPI_INT, MPI_MAX, comm_);
            if (any_pbad) {
                pgood.erase(v);  // a shard there is damaged: this version's persistent copy is out
                any = true;
            }
            for (int b : bads) {
                if (b >= 0) {
                    bad[static_cast<std::size_t>(b)] = 1;
                    any = true;
                }
            }
            int mismatch = (!st && st.code() == TIERCKPT_ERR_INVALID) ? 1 : 0, any_mismatch = 0;
            MPI_Allreduce(&mismatch, &any_mismatch, 1, MPI_INT, MPI_MAX, comm_);
            if (any_mismatch) {
                return last_error ? error(TIERCKPT_ERR_INVALID, "restore: another rank's regions do not match the checkpoint")
                                  : last_error;
            }
            if (!any) break;  // nothing to exclude: give up on this version
        }
    }
    if (pother[1] && pgood.empty()) {
        return error(TIERCKPT_ERR_INVALID,
                     "the persistent directory {} holds checkpoints of a job of {} ranks (newest: version {}); this "
                     "job has {} ranks: restart it with {} ranks, or give --ckpt-persist a directory of its own",
                     persist_dir_, pother[1], pother[0], world_, pother[1]);
    }
    if (inv.empty() && any_other_world) {
        return error(TIERCKPT_ERR_INVALID,
                     "the node stores hold checkpoints of a job of {} ranks; this job has {} ranks: restart it with "
                     "{} ranks",
                     any_other_world, world_, any_other_world);
    }
    auto no_persist_hint = [&] {
        return persist_dir_.empty()
                   ? std::string("restore from the persistent tier (--ckpt-persist), or start from scratch in a new job")
                   : fmt::format("the persistent tier {} holds no complete copy either: start from scratch in a new job",
                                 persist_dir_);
    };
    if (newest_committed) {
        // Starting over here would silently throw the run's progress away.
        return error(TIERCKPT_ERR_NOT_FOUND,
                     "no complete checkpoint: version {} was committed, but no surviving node store holds a good copy "
                     "of the shard of rank(s) {} (their node and every node with a copy are gone); {}",
                     *newest_committed, lost_ranks(*newest_committed, bad), no_persist_hint());
    }
    if (expect_version_ > 0) {
        return error(TIERCKPT_ERR_NOT_FOUND,
                     "no complete checkpoint: before this relaunch the job committed version {} ({}), but the node "
                     "stores of this step hold no complete version (the nodes with its shards and their copies are "
                     "gone); {}",
                     expect_version_, env::kExpectVersion, no_persist_hint());
    }
    if (!versions.empty() && !last_error) {
        log::info("restore: no version is complete across the job's node stores");
    }
    return RestoreResult{};
}

Status Checkpointer::close() {
    if (closed_) return Status::ok();
    fetched_.reset();
    // A flush in progress finishes and its version becomes visible (a
    // failure is reported in the statistics and logs); so does one that the
    // last commit starts.
    Status flushed = persist_poll(true);
    Status st;
    if (inflight_) st = commit_inflight();
    flushed = persist_poll(true);
    (void)flushed;
    {
        std::lock_guard<std::mutex> lk(fmu_);
        flush_stop_ = true;
    }
    fcv_.notify_all();
    if (flusher_.joinable()) flusher_.join();
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = true;
    }
    if (wake_fd_) wake_worker();
    if (worker_.joinable()) worker_.join();
    transport_.reset();
    stager_.reset();  // unregisters the store mapping before it goes
    store_.reset();
    if (node_comm_ != MPI_COMM_NULL) MPI_Comm_free(&node_comm_);
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    if (we_initialized_mpi_) {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
    }
    closed_ = true;
    return st;
}

}  // namespace tck
