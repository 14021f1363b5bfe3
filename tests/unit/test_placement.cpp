#include <catch2/catch.hpp>

#include "lib/replication/partners.hpp"
#include "lib/replication/placement.hpp"

using tck::partner_nodes;
using V = std::vector<std::size_t>;

TEST_CASE("without failure domains, copies go to the next nodes in order", "[placement]") {
    std::vector<std::string> none(4);
    CHECK(partner_nodes(none, 0, 1) == V{1});
    CHECK(partner_nodes(none, 3, 1) == V{0});
    CHECK(partner_nodes(none, 2, 2) == V{3, 0});
    CHECK(partner_nodes(none, 1, 5) == V{2, 3, 0});  // never itself, never twice
    CHECK(partner_nodes({""}, 0, 1).empty());
}

TEST_CASE("copies leave the node's failure domain, and spread over domains", "[placement]") {
    std::vector<std::string> racks{"a", "a", "b", "b"};
    CHECK(partner_nodes(racks, 0, 1) == V{2});
    CHECK(partner_nodes(racks, 1, 1) == V{2});
    CHECK(partner_nodes(racks, 2, 1) == V{0});
    CHECK(partner_nodes(racks, 3, 1) == V{0});
    // Two copies, two racks: the second copy has no other rack to go to, so
    // another node of the other rack, before one of the same rack.
    CHECK(partner_nodes(racks, 0, 2) == V{2, 3});
    std::vector<std::string> three{"a", "a", "b", "c", "b", "c"};
    CHECK(partner_nodes(three, 0, 2) == V{2, 3});  // one copy in each other rack
    CHECK(partner_nodes(three, 4, 2) == V{5, 0});
    // Only one domain: the next nodes, as without domains.
    CHECK(partner_nodes({"x", "x", "x"}, 1, 1) == V{2});
}

TEST_CASE("a node's ranks copy rank for rank to the partner node's ranks", "[placement]") {
    // 3 nodes of 2 ranks (leaders 0, 2, 4), one replica, no domains.
    const std::vector<int> leaders{0, 0, 2, 2, 4, 4};
    const std::vector<std::string> none(3);
    auto p0 = tck::choose_partners(leaders, none, 1, 0);
    CHECK(p0.partners == std::vector<int>{2});
    CHECK(p0.sources == std::vector<int>{4});
    auto p3 = tck::choose_partners(leaders, none, 1, 3);
    CHECK(p3.partners == std::vector<int>{5});
    CHECK(p3.sources == std::vector<int>{1});
    // Two replicas: the two other nodes, both ways.
    auto two = tck::choose_partners(leaders, none, 2, 1);
    CHECK(two.partners == std::vector<int>{3, 5});
    CHECK(two.sources == std::vector<int>{3, 5});
    // A node with fewer ranks: its ranks are taken in turn.
    const std::vector<int> uneven{0, 0, 0, 3};
    auto u = tck::choose_partners(uneven, std::vector<std::string>(2), 1, 2);
    CHECK(u.partners == std::vector<int>{3});
    CHECK(tck::choose_partners(uneven, std::vector<std::string>(2), 1, 3).sources == std::vector<int>{0, 1, 2});
}
