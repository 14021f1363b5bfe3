// Which ranks keep copies of which rank's shards. A node's ranks replicate
// to the ranks of the nodes partner_nodes() picks (placement.hpp: the next
// nodes in order, in other failure domains where the admin names them),
// rank for rank by their index on the node. Pure: no MPI, unit-tested.
#pragma once

#include <string>
#include <vector>

namespace tck {

struct Partnership {
    std::vector<int> partners;  // the ranks that keep copies of rank's shards
    std::vector<int> sources;   // the ranks whose shards rank keeps copies of
};

// leader_of: every rank's node leader (JobLayout::leader_of);
// node_domains: every node's failure domain, by node index (nodes ordered by
// their leader's rank; "" is a domain of its own); replicas: copies per
// shard, at most the number of nodes - 1.
Partnership choose_partners(const std::vector<int> &leader_of, const std::vector<std::string> &node_domains,
                            unsigned replicas, int rank);

}  // namespace tck
