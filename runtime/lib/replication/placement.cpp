#include "placement.hpp"

#include <algorithm>
#include <set>

namespace tck {

std::vector<std::size_t> partner_nodes(const std::vector<std::string> &domains, std::size_t i, unsigned r) {
    std::size_t n = domains.size();
    auto domain_of = [&](std::size_t k) { return domains[k].empty() ? "\n" + std::to_string(k) : domains[k]; };
    std::vector<std::size_t> out;
    std::set<std::string> used{domain_of(i)};
    // Three passes over the nodes after i: new domains, other domains, any.
    for (int pass = 0; pass < 3 && out.size() < r; ++pass) {
        for (std::size_t step = 1; step < n && out.size() < r; ++step) {
            std::size_t k = (i + step) % n;
            if (std::find(out.begin(), out.end(), k) != out.end()) continue;
            std::string d = domain_of(k);
            bool ok = pass == 0 ? !used.count(d) : pass == 1 ? d != domain_of(i) : true;
            if (!ok) continue;
            out.push_back(k);
            used.insert(d);
        }
    }
    return out;
}

}  // namespace tck
