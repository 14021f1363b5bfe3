// The defaults a job gets when neither the admin (plugstack.conf) nor the
// user (--ckpt-*, TIERCKPT_*) says otherwise: the one definition, shared by
// the SPANK plugin, the runtime and the tierckpt command. tierckpt(7) and
// spank-tierckpt(8) document them; keep the pages in step.
#pragma once

#include <cstdint>

namespace tck::defaults {

// How long a save waits for its partners to acknowledge their copies
// before the version fails to commit (TIERCKPT_REPLICA_TIMEOUT_MS).
inline constexpr int kReplicaTimeoutMs = 60000;
// A watched peer silent this long is taken for dead (TIERCKPT_PEER_TIMEOUT_MS;
// 0 turns the watch off). Longer than the longest pause a live process
// shows on the machines we measured: on the test machine kind a virtual
// CPU stops now and then with every thread queued on it (a sleeping
// process woke 3.2 s late under a job's load, and at 3000 a live node was
// taken for dead; twice 5.0-5.3 s late in 90 minutes), and a node's ranks
// may all sit on that CPU. 8 s leaves half as much again.
inline constexpr int kPeerTimeoutMs = 8000;
// The persistent tier: flush every Nth committed version
// (--ckpt-persist-every), and keep this many complete versions there
// (--ckpt-persist-keep).
inline constexpr std::uint64_t kPersistEvery = 10;
inline constexpr std::uint32_t kPersistKeep = 3;

// A node's mean time between failures, for the schedule when neither the
// admin (plugstack node_mtbf) nor the user (--ckpt-node-mtbf) gives one:
// 264 days, from Llama 3 pre-training's 419 unexpected interruptions in
// 54 days on 2,048 nodes of 8 GPUs (Dubey et al., "The Llama 3 Herd of
// Models", 2024, section 3.3.4): 54 d / 419 * 2,048 = 264 d.
inline constexpr double kNodeMtbfS = 264 * 86400.0;
// Failure to training again, before the restore, for the schedule's
// expected lost time (detection, relaunch); `tierckpt plan --restart`.
inline constexpr double kRestartS = 60;

}  // namespace tck::defaults
