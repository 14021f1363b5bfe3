// The job as MPI lays it out, fixed once open() has run: the communicators,
// this rank, which ranks share a node, every node's name. Read by every part
// on any thread; written only by Checkpointer::open on the application's
// thread, before the worker and flusher threads start.
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

#include "common/status.hpp"

namespace tck {

// leader_of: every rank's node leader (JobLayout::leader_of). Pure.
// The ranks on the node whose leader is node_leader, in rank order.
std::vector<int> ranks_on(const std::vector<int> &leader_of, int node_leader);
// Every node's leader, in rank order: a node's index in the job.
std::vector<int> node_leaders(const std::vector<int> &leader_of);

struct JobLayout {
    MPI_Comm comm = MPI_COMM_NULL;       // a duplicate of the application's, errors returned
    MPI_Comm node_comm = MPI_COMM_NULL;  // the ranks sharing this node (MPI_COMM_TYPE_SHARED)
    int rank = 0, world = 1;             // in comm
    int node_rank = 0, node_size = 1;    // in node_comm; node rank 0 is the node's leader
    std::vector<int> leader_of;          // for every rank: the comm rank of its node's leader
    std::vector<std::string> hosts;      // for every rank: its node's host name
    // Threads for the checksums the application waits for (behind save's
    // copy, behind restore's pull, restore's verification): this rank's
    // share of the node's CPUs (its binding, or the node's divided among
    // its ranks, which save and restore at once), 1 to 8.
    unsigned crc_threads = 1;

    int leader() const { return leader_of[static_cast<std::size_t>(rank)]; }
    bool same_node(int a, int b) const {
        return leader_of[static_cast<std::size_t>(a)] == leader_of[static_cast<std::size_t>(b)];
    }
    const std::string &host(int r) const { return hosts[static_cast<std::size_t>(r)]; }
    std::vector<int> ranks_on(int node_leader) const { return tck::ranks_on(leader_of, node_leader); }
    std::vector<int> node_leaders() const { return tck::node_leaders(leader_of); }

    // Collective over comm (MPI initialised): duplicates comm (errors
    // returned, never aborting the application), splits it by node, learns
    // every rank's node and host name and this rank's checksum threads.
    static Result<JobLayout> build(MPI_Comm comm);
    // Frees the communicators build() made.
    void free();
};

}  // namespace tck
