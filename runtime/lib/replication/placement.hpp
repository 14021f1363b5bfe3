// Where each node's shards get their copies: the one formula, a pure
// function so that every rank computes every rank's partners the same way
// (each rank also watches the ranks that copy to it) and tests can check it.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace tck {

// domains[i]: the failure domain of the job's i-th node (in the order of the
// nodes' first ranks); "" means a domain of its own. Returns the indices of
// the r nodes that keep copies of node i's shards: walking on from i (i+1,
// i+2, ... wrapping around), first nodes of domains not used yet (other than
// i's own), then any other nodes of other domains, then nodes of i's own
// domain; never i itself. Fewer than r when the job has fewer other nodes.
std::vector<std::size_t> partner_nodes(const std::vector<std::string> &domains, std::size_t i, unsigned r);

}  // namespace tck
