#include "partners.hpp"

#include <algorithm>

#include "lib/job.hpp"
#include "placement.hpp"

namespace tck {

namespace {

std::vector<int> partners_of(const std::vector<int> &leader_of, const std::vector<int> &nodes,
                             const std::vector<std::string> &node_domains, unsigned replicas, int rank) {
    int leader = leader_of[static_cast<std::size_t>(rank)];
    std::size_t node = static_cast<std::size_t>(std::find(nodes.begin(), nodes.end(), leader) - nodes.begin());
    std::vector<int> mates = ranks_on(leader_of, leader);
    std::size_t index = static_cast<std::size_t>(std::find(mates.begin(), mates.end(), rank) - mates.begin());
    std::vector<int> out;
    for (std::size_t k : partner_nodes(node_domains, node, replicas)) {
        std::vector<int> there = ranks_on(leader_of, nodes[k]);
        out.push_back(there[index % there.size()]);
    }
    return out;
}

}  // namespace

Partnership choose_partners(const std::vector<int> &leader_of, const std::vector<std::string> &node_domains,
                            unsigned replicas, int rank) {
    const std::vector<int> nodes = node_leaders(leader_of);
    Partnership p;
    p.partners = partners_of(leader_of, nodes, node_domains, replicas, rank);
    // The ranks that copy to this one: their `ready` is the only one acted on.
    for (int i = 0; i < static_cast<int>(leader_of.size()); ++i) {
        if (i == rank) continue;
        auto theirs = partners_of(leader_of, nodes, node_domains, replicas, i);
        if (std::find(theirs.begin(), theirs.end(), rank) != theirs.end()) p.sources.push_back(i);
    }
    return p;
}

}  // namespace tck
