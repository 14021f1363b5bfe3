#include <catch2/catch.hpp>

#include "cli/run_plan.hpp"

using namespace tck::cli;
using V = std::vector<std::string>;

TEST_CASE("tierckpt run reads its options and the srun line", "[run]") {
    auto o = parse_run_args({"--spares", "1", "--max-restarts=5", "--", "srun", "--mpi=pmix", "-n", "6", "./train", "-N", "4"});
    REQUIRE(o);
    CHECK(o->spares == 1);
    CHECK(o->max_restarts == 5);
    CHECK(o->probe_timeout_s == 5);
    CHECK(o->srun == V{"srun", "--mpi=pmix", "-n", "6", "./train", "-N", "4"});  // the program's -N is its own
    auto plain = parse_run_args({"/usr/bin/srun", "./train"});
    REQUIRE(plain);
    CHECK(plain->spares == 0);
    CHECK(plain->max_restarts == 3);
}

TEST_CASE("tierckpt run refuses an srun line that chooses nodes, naming the option", "[run]") {
    for (const char *bad : {"-N3", "--nodes=3", "-w", "--nodelist=n1", "-xn2", "--exclude=n2", "-r1", "--relative=1"}) {
        auto o = parse_run_args({"--", "srun", "--mpi=pmix", bad, "./train"});
        REQUIRE_FALSE(o);
        CHECK(o.status().message().find("leave the choice of nodes") != std::string::npos);
        CHECK(o.status().message().find(std::string(bad).substr(0, 2)) != std::string::npos);
    }
    auto n = parse_run_args({"--", "srun", "-N", "3", "./train"});
    REQUIRE_FALSE(n);
    CHECK(n.status().message().find("-N") != std::string::npos);
}

TEST_CASE("tierckpt run refuses what is not an srun line, and bad numbers", "[run]") {
    auto o = parse_run_args({"--", "mpirun", "./train"});
    REQUIRE_FALSE(o);
    CHECK(o.status().message().find("'mpirun' is not srun") != std::string::npos);
    CHECK_FALSE(parse_run_args({"--spares", "x", "--", "srun", "a"}));
    CHECK_FALSE(parse_run_args({"--spares"}));
    CHECK_FALSE(parse_run_args({"--probe-timeout=0", "--", "srun", "a"}));
    auto empty = parse_run_args({"--spares=1", "--"});
    REQUIRE_FALSE(empty);
    CHECK(empty.status().message().find("no command") != std::string::npos);
    auto unknown = parse_run_args({"--spare=1", "--", "srun", "a"});
    REQUIRE_FALSE(unknown);
    CHECK(unknown.status().message().find("unknown option '--spare=1'") != std::string::npos);
}

TEST_CASE("each attempt's srun line names its nodes; a relaunch overlaps the failed step", "[run]") {
    auto o = parse_run_args({"--", "srun", "--mpi=pmix", "./train", "--steps", "9"});
    REQUIRE(o);
    CHECK(srun_command(*o, {"n1", "n2"}, false) ==
          V{"srun", "--nodes=2", "--nodelist=n1,n2", "--kill-on-bad-exit=1", "--mpi=pmix", "./train", "--steps", "9"});
    auto again = srun_command(*o, {"n1", "n3"}, true);
    CHECK(std::find(again.begin(), again.end(), "--overlap") != again.end());
}

TEST_CASE("the spares' stores are prepared with the step's --ckpt-* options, and nothing else of it", "[run]") {
    auto o = parse_run_args({"--", "srun", "--mpi=pmix", "--ckpt-mem=3G", "-n", "6", "--ckpt-replicas", "1",
                             "--ckpt-persist=/p", "--ckpt-mem", "./train", "--ckpt-every", "5", "--ckpt-mem=9G"});
    REQUIRE(o);
    CHECK(warmup_command(*o, {"n4", "n5"}) ==
          V{"srun", "--overlap", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--nodelist=n4,n5",
            "--job-name=tierckpt-warmup", "--ckpt-mem=3G", "--ckpt-replicas", "1", "--ckpt-persist=/p", "--ckpt-mem",
            "true"});
    CHECK(warmup_command(*o, {}).empty());
    auto bare = parse_run_args({"srun", "./train"});
    REQUIRE(bare);
    CHECK(warmup_command(*bare, {"n9"}) == V{"srun", "--overlap", "--nodes=1", "--ntasks=1", "--ntasks-per-node=1",
                                             "--nodelist=n9", "--job-name=tierckpt-warmup", "true"});
}

TEST_CASE("the next attempt keeps the survivors in place and takes spares in order", "[run]") {
    auto n = next_nodes({"n1", "n2", "n3"}, {"n4", "n5"}, {"n2"});
    REQUIRE(n);
    CHECK(*n == V{"n1", "n3", "n4"});
    auto two = next_nodes({"n1", "n2", "n3"}, {"n4", "n5"}, {"n2", "n4"});
    REQUIRE(two);
    CHECK(*two == V{"n1", "n3", "n5"});
    auto none = next_nodes({"n1", "n2", "n3"}, {"n4"}, {"n1", "n2"});
    REQUIRE_FALSE(none);
    CHECK(none.status().message().find("needs 3, 2 are left") != std::string::npos);
    CHECK(none.status().message().find("--min-nodes") != std::string::npos);
}

TEST_CASE("--min-nodes: with no spare left the survivors go on, with as many tasks a node", "[run]") {
    // No spare: the survivors alone, while at least K are left.
    auto two = next_nodes({"n1", "n2", "n3"}, {}, {"n2"}, 2);
    REQUIRE(two);
    CHECK(*two == V{"n1", "n3"});
    auto spare_first = next_nodes({"n1", "n2", "n3"}, {"n4"}, {"n2"}, 2);  // a spare still wins
    REQUIRE(spare_first);
    CHECK(*spare_first == V{"n1", "n3", "n4"});
    auto one = next_nodes({"n1", "n2", "n3"}, {}, {"n2", "n3"}, 2);
    REQUIRE_FALSE(one);
    CHECK(one.status().message().find("1 are left (2 failed: n2,n3), fewer than --min-nodes=2") != std::string::npos);

    // -n 6 on 3 nodes is 2 a node: 4 tasks on 2 nodes, the user's count left
    // out (the program's own -n stays).
    auto o = parse_run_args({"--min-nodes", "2", "--", "srun", "--mpi", "pmix", "-n", "6", "-c", "1", "./train", "-n", "3"});
    REQUIRE(o);
    CHECK(o->min_nodes == 2);
    CHECK(o->ntasks == 6);
    CHECK(check_min_nodes(*o, 3));
    auto four = relaunch_tasks(*o, 3, 0, 2);
    REQUIRE(four);
    CHECK(*four == 4);
    CHECK(srun_command(*o, {"n1", "n3"}, true, *four) ==
          V{"srun", "--nodes=2", "--nodelist=n1,n3", "--kill-on-bad-exit=1", "--overlap", "--ntasks=4", "--mpi",
            "pmix", "-c", "1", "./train", "-n", "3"});
    // On as many nodes as the first attempt: the line as given.
    CHECK(srun_command(*o, {"n1", "n3", "n4"}, true) ==
          V{"srun", "--nodes=3", "--nodelist=n1,n3,n4", "--kill-on-bad-exit=1", "--overlap", "--mpi", "pmix", "-n",
            "6", "-c", "1", "./train", "-n", "3"});
    for (const char *form : {"-n6", "--ntasks=6"}) {
        auto f = parse_run_args({"--min-nodes=1", "--", "srun", "--overlap", form, "./train"});
        REQUIRE(f);
        CHECK(f->ntasks == 6);
        CHECK(srun_command(*f, {"n2"}, true, *relaunch_tasks(*f, 3, 0, 1)) ==
              V{"srun", "--nodes=1", "--nodelist=n2", "--kill-on-bad-exit=1", "--overlap", "--ntasks=2", "--overlap",
                "./train"});
    }
    // A count given as the next word of a long option is read as srun does.
    auto spaced = parse_run_args({"--min-nodes=2", "--", "srun", "--ntasks", "6", "--ntasks-per-node", "4", "./train"});
    REQUIRE(spaced);
    CHECK(spaced->ntasks == 6);
    CHECK(spaced->ntasks_per_node == 4);
    // -n wins over --ntasks-per-node (srun ran 6 tasks, 2 a node), and the
    // ranks the first attempt reported win over both.
    CHECK(*relaunch_tasks(*spaced, 3, 0, 2) == 4);
    CHECK(*relaunch_tasks(*spaced, 3, 9, 2) == 6);
    CHECK(srun_command(*spaced, {"n1", "n3"}, true, 4) ==
          V{"srun", "--nodes=2", "--nodelist=n1,n3", "--kill-on-bad-exit=1", "--overlap", "--ntasks=4",
            "--ntasks-per-node", "4", "./train"});
    // --ntasks-per-node (or its alias) alone; then the allocation's count; then one a node.
    for (const V &line : {V{"srun", "--ntasks-per-node=2", "./train"}, V{"srun", "--tasks-per-node", "2", "./train"}}) {
        V args{"--min-nodes=2", "--"};
        args.insert(args.end(), line.begin(), line.end());
        auto per = parse_run_args(args);
        REQUIRE(per);
        CHECK(per->ntasks_per_node == 2);
        CHECK(*relaunch_tasks(*per, 3, 0, 2) == 4);
    }
    auto bare = parse_run_args({"--min-nodes=1", "--", "srun", "./train"});
    REQUIRE(bare);
    CHECK(*relaunch_tasks(*bare, 2, 0, 1) == 1);
    bare->env_ntasks = 6;
    CHECK(*relaunch_tasks(*bare, 3, 0, 2) == 4);
    bare->env_ntasks = 8;  // salloc -n8 over 3 nodes and a spare
    auto uneven_env = relaunch_tasks(*bare, 3, 0, 2);
    REQUIRE_FALSE(uneven_env);
    CHECK(uneven_env.status().message().find("SLURM_NTASKS") != std::string::npos);
    auto uneven_ranks = relaunch_tasks(*bare, 3, 7, 2);
    REQUIRE_FALSE(uneven_ranks);
    CHECK(uneven_ranks.status().message().find("the first attempt ran 7 ranks on 3 nodes") != std::string::npos);
    // Node choices hidden behind a spaced value are still refused.
    CHECK_FALSE(parse_run_args({"--", "srun", "--mpi", "pmix", "-w", "n1", "./train"}));

    // Refused early, with the fix.
    auto uneven = parse_run_args({"--min-nodes=2", "--", "srun", "-n", "7", "./train"});
    REQUIRE(uneven);
    tck::Status st = check_min_nodes(*uneven, 3);
    REQUIRE_FALSE(st);
    CHECK(st.message().find("7 tasks do not spread evenly over the step's 3 nodes") != std::string::npos);
    CHECK(st.message().find("--ntasks-per-node") != std::string::npos);
    auto many = parse_run_args({"--min-nodes=4", "--", "srun", "./train"});
    REQUIRE(many);
    CHECK(check_min_nodes(*many, 3).message().find("--min-nodes=4 is more than the step's 3 node(s)") !=
          std::string::npos);
    CHECK_FALSE(parse_run_args({"--min-nodes=0", "--", "srun", "./train"}));
    CHECK_FALSE(parse_run_args({"--", "srun", "-n", "x", "./train"}));
}

TEST_CASE("Slurm's unusable node states are recognised", "[run]") {
    CHECK(unusable_nodes("n1 allocated\nn2 down*\nn3 mixed\nn4 drained\nn5 idle*\nn6 draining\n") ==
          V{"n2", "n4", "n5", "n6"});
    CHECK(unusable_nodes("n1 allocated\nn2 idle\n").empty());
}

TEST_CASE("the step's output tells lost peers and failures apart", "[run]") {
    auto p = parse_peer_lost("tierckpt: error: rank 0 on n1: peer rank 2 on n2 silent for 10.2 s (TIERCKPT_PEER_TIMEOUT_MS=10000): ending");
    REQUIRE(p);
    CHECK(p->node == "n2");
    CHECK(p->silent_s == Approx(10.2));
    CHECK_FALSE(p->gone);
    p = parse_peer_lost("tierckpt: error: rank 0 on n1: peer rank 3 on n2 silent for 1.4 s; its node answers that its "
                        "heartbeat port is closed: its process ended without closing (TIERCKPT_PEER_TIMEOUT_MS=8000): ending");
    REQUIRE(p);
    CHECK(p->node == "n2");
    CHECK(p->silent_s == Approx(1.4));
    CHECK(p->gone);
    CHECK(parse_node_failure("srun: error: Node failure on n2") == std::optional<std::string>("n2"));
    CHECK(is_step_failure_line("srun: error: n1: tasks 0-1: Exited with exit code 75"));
    CHECK(is_step_failure_line("srun: error: n3: task 4: Killed"));
    CHECK_FALSE(is_step_failure_line("srun: error: n1: task 0: Exited with exit code 0"));
    CHECK_FALSE(is_step_failure_line("saved version=4 stall_ms=3.1"));
}
