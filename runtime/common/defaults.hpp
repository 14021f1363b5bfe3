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
// 0 turns the watch off).
inline constexpr int kPeerTimeoutMs = 3000;
// The persistent tier: flush every Nth committed version
// (--ckpt-persist-every), and keep this many complete versions there
// (--ckpt-persist-keep).
inline constexpr std::uint64_t kPersistEvery = 10;
inline constexpr std::uint32_t kPersistKeep = 3;

}  // namespace tck::defaults
