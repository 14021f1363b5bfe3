#include "job.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "collectives.hpp"

namespace tck {

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

std::vector<int> ranks_on(const std::vector<int> &leader_of, int node_leader) {
    std::vector<int> there;
    for (std::size_t i = 0; i < leader_of.size(); ++i) {
        if (leader_of[i] == node_leader) there.push_back(static_cast<int>(i));
    }
    return there;
}

std::vector<int> node_leaders(const std::vector<int> &leader_of) {
    std::vector<int> nodes(leader_of);
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    return nodes;
}

Result<JobLayout> JobLayout::build(MPI_Comm app_comm) {
    JobLayout j;
    MPI_Comm_dup(app_comm, &j.comm);
    MPI_Comm_set_errhandler(j.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(j.comm, &j.rank);
    MPI_Comm_size(j.comm, &j.world);
    MPI_Comm_split_type(j.comm, MPI_COMM_TYPE_SHARED, j.rank, MPI_INFO_NULL, &j.node_comm);
    MPI_Comm_rank(j.node_comm, &j.node_rank);
    MPI_Comm_size(j.node_comm, &j.node_size);
    j.crc_threads = std::clamp(cpu_share(j.node_size), 1u, 8u);
    int leader = j.rank;
    MPI_Bcast(&leader, 1, MPI_INT, 0, j.node_comm);
    j.leader_of.resize(static_cast<std::size_t>(j.world));
    MPI_Allgather(&leader, 1, MPI_INT, j.leader_of.data(), 1, MPI_INT, j.comm);
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    auto hosts = allgather_bytes(j.comm, host, std::strlen(host), "exchanging node names");
    if (!hosts) {
        j.free();
        return hosts.status();
    }
    for (const auto &h : *hosts) j.hosts.emplace_back(h.begin(), h.end());
    return j;
}

void JobLayout::free() {
    if (node_comm != MPI_COMM_NULL) MPI_Comm_free(&node_comm);
    if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
}

}  // namespace tck
