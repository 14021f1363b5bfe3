#include "partners.hpp"

#include <algorithm>

#include "placement.hpp"

namespace tck {

namespace {

std::vector<int> partners_of(const std::vector<int> &leader_of, const std::vector<int> &nodes,
                             const std::vector<std::string> &node_domains, unsigned replicas, int rank) {
    auto ranks_on = [&](int leader) {
        std::vector<int> there;
        for (std::size_t i = 0; i < leader_of.size(); ++i) {
            if (leader_of[i] == leader) there.push_back(static_cast<int>(i));
        }
        return there;
    };
    int leader = leader_of[static_cast<std::size_t>(rank)];
    std::size_t node = static_cast<std::size_t>(std::find(nodes.begin(), nodes.end(), leader) - nodes.begin());
    std::vector<int> mates = ranks_on(leader);
    std::size_t index = static_cast<std::size_t>(std::find(mates.begin(), mates.end(), rank) - mates.begin());
    std::vector<int> out;
    for (std::size_t k : partner_nodes(node_domains, node, replicas)) {
        std::vector<int> there = ranks_on(nodes[k]);
        out.push_back(there[index % there.size()]);
    }
    return out;
}

}  // namespace

Partnership choose_partners(const std::vector<int> &leader_of, const std::vector<std::string> &node_domains,
                            unsigned replicas, int rank) {
    std::vector<int> nodes(leader_of);
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
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
