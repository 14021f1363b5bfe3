// The TIERCKPT_* variables the SPANK plugin hands to a job's tasks and the
// runtime reads. Documented in tierckpt(7); keep the two in step.
#pragma once

namespace tck::env {

inline constexpr const char *kStore = "TIERCKPT_STORE";                // path of this node's store file
inline constexpr const char *kStoreBytes = "TIERCKPT_STORE_BYTES";     // its size in bytes
inline constexpr const char *kStoreCreated = "TIERCKPT_STORE_CREATED"; // 1: this step made it; 0: found it
inline constexpr const char *kPrefault = "TIERCKPT_PREFAULT";          // 1: map it with MAP_POPULATE
inline constexpr const char *kReplicas = "TIERCKPT_REPLICAS";          // in-memory copies on other nodes
inline constexpr const char *kPersistDir = "TIERCKPT_PERSIST_DIR";     // persistent tier ("" or unset: none)
inline constexpr const char *kPersistEvery = "TIERCKPT_PERSIST_EVERY"; // flush every N committed versions
inline constexpr const char *kPersistKeep = "TIERCKPT_PERSIST_KEEP";   // persistent versions to keep
inline constexpr const char *kJobId = "TIERCKPT_JOB_ID";
inline constexpr const char *kRestartCount = "TIERCKPT_RESTART_COUNT"; // the job's requeue count
inline constexpr const char *kMemlock = "TIERCKPT_MEMLOCK_BYTES";      // the tasks' locked-memory limit
inline constexpr const char *kTransport = "TIERCKPT_TRANSPORT";        // ucx, ofi or auto
inline constexpr const char *kReplicaTimeout = "TIERCKPT_REPLICA_TIMEOUT_MS";  // a partner's time to copy
inline constexpr const char *kFailureDomain = "TIERCKPT_FAILURE_DOMAIN";  // this node's failure domain ("": none)
inline constexpr const char *kUcxPull = "TIERCKPT_UCX_PULL";  // am (default) or get: how UCX moves shards
inline constexpr const char *kPeerTimeout = "TIERCKPT_PEER_TIMEOUT_MS";  // a silent peer is dead after this (0: never)
inline constexpr const char *kRunReport = "TIERCKPT_RUN_REPORT";  // 1: print restore reports for tierckpt run
inline constexpr const char *kCuda = "TIERCKPT_CUDA";  // 0: treat every region as host memory (CUDA tier off)
inline constexpr const char *kCkptInterval = "TIERCKPT_CKPT_INTERVAL";  // auto, STEPS or DURATION: when due() says save
inline constexpr const char *kNodeMtbf = "TIERCKPT_NODE_MTBF";  // a node's MTBF (DURATION), for the auto schedule
inline constexpr const char *kMaxOverhead = "TIERCKPT_MAX_OVERHEAD";  // PCT: the auto schedule's cap on time spent saving
inline constexpr const char *kExpectVersion = "TIERCKPT_EXPECT_VERSION";  // tierckpt run: the version committed before

}  // namespace tck::env
