/*
 * tierckpt: managed tiered checkpointing for Slurm clusters. C API.
 *
 * Plain C: opaque handles, plain types, no required callbacks, so that other
 * languages (Python) can bind to it. Every call returns a tierckpt_status_t;
 * tierckpt_last_error() gives the message of the calling thread's last
 * failure. No call aborts the application on a checkpoint error.
 *
 * See tierckpt(3).
 */
#ifndef TIERCKPT_TIERCKPT_H
#define TIERCKPT_TIERCKPT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TIERCKPT_VERSION_MAJOR 0
#define TIERCKPT_VERSION_MINOR 1
#define TIERCKPT_VERSION_PATCH 0

/* Status codes. The numeric values are part of the ABI: never renumber. */
typedef enum tierckpt_status {
    TIERCKPT_OK = 0,
    TIERCKPT_ERR_INVALID = 1,     /* a bad argument or setting */
    TIERCKPT_ERR_NO_MEMORY = 2,   /* allocation or reservation failed */
    TIERCKPT_ERR_IO = 3,          /* a system call failed */
    TIERCKPT_ERR_NOT_FOUND = 4,   /* no such store, version or file */
    TIERCKPT_ERR_CORRUPT = 5,     /* a checksum or format check failed */
    TIERCKPT_ERR_PEER = 6,        /* a peer node failed or is unreachable */
    TIERCKPT_ERR_TIMEOUT = 7,     /* an operation did not finish in time */
    TIERCKPT_ERR_UNSUPPORTED = 8, /* not built in or not available here */
    TIERCKPT_ERR_INTERNAL = 9     /* a bug: please report it */
} tierckpt_status_t;

/* The exit status of a process that the runtime ends because a watched
 * peer (a rank it replicates to or from) stopped answering for
 * TIERCKPT_PEER_TIMEOUT_MS: the step cannot finish, relaunch it (this is
 * what tierckpt run looks for). 75 is EX_TEMPFAIL: "try again". Programs
 * that see TIERCKPT_ERR_PEER may exit with it too. */
#define TIERCKPT_EXIT_PEER_LOST 75

/* "0.1.0". */
const char *tierckpt_version(void);

/* A short fixed description of a status code ("invalid argument"). */
const char *tierckpt_status_string(tierckpt_status_t status);

/* The message of this thread's last failed call ("" if none). The pointer
 * stays valid until the thread's next tierckpt call. */
const char *tierckpt_last_error(void);

/* Which optional parts this library was built with, as a string such as
 * "ucx ofi cuda" (possibly empty). */
const char *tierckpt_features(void);

/* ---- checkpointing ------------------------------------------------------ */

/* A checkpointer: one per process (MPI rank). Opaque. */
typedef struct tierckpt_ckpt tierckpt_t;
/* Explicit settings for use without the SPANK plugin. Opaque. */
typedef struct tierckpt_options tierckpt_options_t;

tierckpt_options_t *tierckpt_options_new(void);
/* Keys: "store" (path of the node store file), "store_bytes" (create it
 * this large when missing, e.g. "1G"), "prefault" ("yes"/"no"), "job_id",
 * "replicas" (0-16), "transport" ("ucx", "ofi", "auto"),
 * "replica_timeout_ms", "peer_timeout_ms" (0: do not watch peers),
 * "failure_domain" (this node's rack: copies go to other domains),
 * "persist_dir", "persist_every" (or "auto"), "persist_keep", "cuda" ("yes"/"no": look
 * for device regions; default yes), "ckpt_interval" ("auto", steps, or a
 * duration such as "10m": tierckpt_due), "node_mtbf" (a duration, "264d"),
 * "max_overhead" (a percentage, "2"). */
tierckpt_status_t tierckpt_options_set(tierckpt_options_t *opts, const char *key, const char *value);
void tierckpt_options_free(tierckpt_options_t *opts);

/* Collective over MPI_COMM_WORLD (tierckpt_mpi.h takes a communicator).
 * Calls MPI_Init_thread(MPI_THREAD_FUNNELED) when MPI is not initialised,
 * and then MPI_Finalize in tierckpt_close. opts NULL: the settings come
 * from the TIERCKPT_* variables the SPANK plugin sets. */
tierckpt_status_t tierckpt_open(const tierckpt_options_t *opts, tierckpt_t **ckpt);

/* Registers bytes at ptr under name (1 to 55 bytes, any but NUL: UTF-8 is
 * fine; unique among the registered regions). Every save stores the
 * registered regions; restore fills them in place. Regions are read only
 * inside tierckpt_save and tierckpt_restore, so the set may change between
 * saves (tierckpt_unregister_all, then register the new set), even while a
 * save is in flight: each save records the regions it holds. Registering n
 * regions costs O(n).
 * With the CUDA tier ("cuda" in tierckpt_features()), ptr may also be CUDA
 * device memory (cudaMalloc, or managed memory) on any device of this
 * process: the kind is detected here, with cudaPointerGetAttributes.
 * Without it (or with the option "cuda" = "no", TIERCKPT_CUDA=0) every
 * region must be host memory. */
tierckpt_status_t tierckpt_register(tierckpt_t *ckpt, const char *name, void *ptr, size_t bytes);

/* Registers bytes at ptr as this rank's slice of the global array `name`:
 * bytes [global_offset, global_offset + bytes) of an array of global_bytes
 * bytes (all in bytes, not elements), as in a tensor sharded over ranks.
 * Every rank that holds part of the array registers its slice under the
 * same name and global_bytes; together the slices must cover the array
 * exactly, no byte twice (a rank may hold none of it, or an empty slice;
 * every rank still registers at least one region before it saves).
 * tierckpt_register_replicated registers a region every rank holds alike
 * (the same name and size on every rank; a step counter, an RNG seed).
 * Otherwise as tierckpt_register. TIERCKPT_ERR_INVALID here for a slice
 * that does not lie within its array (global_bytes 0, or offset + bytes
 * past it); the job-wide rules are checked by the next tierckpt_save,
 * which returns TIERCKPT_ERR_INVALID on every rank, naming the array, the
 * ranks and the bytes, and saves nothing when they are broken. The layout
 * is recorded in every shard; a restore needs the same arrays and global
 * sizes, on any number of ranks when every region has a layout (see
 * tierckpt_restore). */
tierckpt_status_t tierckpt_register_slice(tierckpt_t *ckpt, const char *name, void *ptr, size_t bytes,
                                          uint64_t global_offset, uint64_t global_bytes);
tierckpt_status_t tierckpt_register_replicated(tierckpt_t *ckpt, const char *name, void *ptr, size_t bytes);

/* Forgets every registered region (not collective; the memory is not
 * touched). Saves and restores need regions registered again. */
tierckpt_status_t tierckpt_unregister_all(tierckpt_t *ckpt);

/* Collective: every rank calls it with the same version, larger than the
 * last. Returns once this rank's regions are copied into the node store
 * (the stall; for device regions it first waits for the work queued on
 * their device, cudaDeviceSynchronize, then copies); the checksum and the
 * copies to partner nodes go on in the background. The vote on the
 * previous version runs at the start of the next save (or in
 * tierckpt_wait/tierckpt_close). A save does not wait for a previous
 * version whose copies are still under way while every node store holds
 * this one beside it and the newest committed one: this version is staged
 * and waits, pending, for its turn; the next save supersedes it (it is
 * never restored) unless the previous one was decided by then. Without
 * that room a save waits for the previous verdict (the wait shows in the
 * statistics). The newest committed version is never overwritten. */
tierckpt_status_t tierckpt_save(tierckpt_t *ckpt, uint64_t version);

/* *due = 1 when a save is due at this step, else 0: the loop calls it once
 * per training step and saves when it says so
 * (if (due) tierckpt_save(ckpt, step)). step: the program's own step
 * counter (increasing; a step below the previous one is
 * TIERCKPT_ERR_INVALID). The schedule is TIERCKPT_CKPT_INTERVAL
 * (srun --ckpt-interval; option "ckpt_interval"):
 *   "auto" (the default): the runtime chooses the interval that minimises
 *     the expected time lost to saving and to recomputation after failures
 *     (Daly's estimate; tierckpt(7), SCHEDULE), from what this job
 *     measures (the step time between due calls, each save's stall and
 *     wait, the time a commit takes, a flush's) and the failure rate
 *     (TIERCKPT_NODE_MTBF / the job's nodes), never shorter than a commit
 *     and within TIERCKPT_MAX_OVERHEAD; the first save is due one step
 *     after the first call, and the interval is decided again at every
 *     save;
 *   a number of steps N: due when step > 0 is a multiple of N;
 *   a duration ("10m"): every duration's worth of measured steps.
 * Not collective and never communicates: it answers from a decision taken
 * inside tierckpt_save from values reduced over the job, so every rank
 * gets the same answer when every rank calls it with the same steps.
 * Saves made without it work as always (they then cost one all-reduce of
 * 40 bytes each, for the decision, except with a number of steps). */
tierckpt_status_t tierckpt_due(tierckpt_t *ckpt, uint64_t step, int *due);
/* The newest schedule decision (after each save of a program that calls
 * tierckpt_due; decisions = 0 before the first: the rest is then 0 and
 * bound is ""). Times in seconds; each input is the largest over the job's
 * ranks. */
typedef struct tierckpt_schedule {
    char mode[16];              /* "auto", "steps" or "duration" */
    char bound[16];             /* what set steps: optimum, commit (no shorter than a commit), overhead-cap,
                                 * no-failures (an infinite MTBF: never), given (steps or duration),
                                 * no-step-time (no step measured yet) */
    uint64_t decisions;         /* decisions since open */
    uint64_t steps;             /* steps between saves (0: never) */
    uint64_t next_due_step;     /* the step at which tierckpt_due turns 1 (UINT64_MAX: never) */
    double interval_s;          /* steps * step_s */
    double step_s;              /* a step's compute, time in saves left out */
    double stall_s;             /* the newest save's stall + wait */
    double commit_s;            /* the newest commit, from its start to every rank's copies acknowledged */
    double flush_s;             /* the newest flush to the persistent tier (0: none) */
    double job_mtbf_s;          /* node MTBF / nodes (auto; infinity: no failures) */
    double optimum_s;           /* auto: the unbounded optimum interval */
    double overhead;            /* auto: the expected share of time lost (saving, recomputation, restarts) */
    double save_overhead;       /* auto: the share spent saving */
    double lost_per_failure_s;  /* auto: expected time lost per failure recovered from memory */
    uint64_t persist_every;     /* the persistent tier: flush every this many committed versions (0: no tier) */
    char persist_bound[16];     /* what set it: given (TIERCKPT_PERSIST_EVERY), optimum (the two-level model),
                                 * flush-time (the fewest saves whose periods cover a flush), none */
} tierckpt_schedule_t;
tierckpt_status_t tierckpt_get_schedule(const tierckpt_t *ckpt, tierckpt_schedule_t *schedule);
/* *committed = 1 once the newest save has committed (or none is in
 * flight), else 0. Never blocks. The commit vote, a collective, runs only
 * in calls every rank makes at the same point of the program:
 * tierckpt_save (for the previous version), tierckpt_wait, tierckpt_close. */
tierckpt_status_t tierckpt_test(tierckpt_t *ckpt, int *committed);

/* Collective. Blocks until the save in flight and the pending one behind
 * it are decided; returns the newest save's status. */
tierckpt_status_t tierckpt_wait(tierckpt_t *ckpt);

/* Collective (every rank, at the same point of the program): *all_ok = 1
 * when every rank passed ok != 0, else 0. Over the checkpointer's own
 * communicator, the one its saves are collective over: ranks agree with it
 * before a save that one of them could not prepare, and skip it together. */
tierckpt_status_t tierckpt_agree(tierckpt_t *ckpt, int ok, int *all_ok);

/* Collective: finds the newest version complete across the job, fills the
 * regions (every byte checked against its checksum; a bad copy is skipped
 * for another one or an older version) and sets *found = 1 and *version;
 * *found = 0 when there is none. When every rank's regions are slices and
 * replicated regions, a version saved by another number of ranks is
 * restored too: each rank's slices are assembled from the saved slices
 * they overlap, replicated regions come from saved rank (rank mod the
 * saved number of ranks). TIERCKPT_ERR_INVALID on every rank, nothing
 * written, when the checkpoint's regions are not those registered (an
 * array missing on either side, another kind or global size). */
tierckpt_status_t tierckpt_restore(tierckpt_t *ckpt, int *found, uint64_t *version);

/* Restore in two steps, for a program that learns its state's layout from
 * the checkpoint (which regions it holds, of what size) before it
 * registers:
 *
 * tierckpt_fetch: collective. The first half of tierckpt_restore: finds
 * the newest version complete across the job, brings this rank's shard
 * into node memory and verifies its checksum (a bad copy is skipped for
 * another one or an older version), copies nothing into regions and needs
 * none registered. *found = 0 when there is none. The shard stays held
 * (in the node store, or in process memory when it came over MPI or from
 * the persistent tier) until tierckpt_restore, tierckpt_save,
 * tierckpt_fetch_drop, another tierckpt_fetch or tierckpt_fetch_any, or
 * tierckpt_close.
 * Then, on this rank alone: tierckpt_fetched_count and
 * tierckpt_fetched_region list the shard's regions (name, bytes) in the
 * order they were saved; tierckpt_fetched_read copies bytes of one of them
 * from offset into host memory at dst (TIERCKPT_ERR_NOT_FOUND: no shard is
 * held, or it has no region of that name; TIERCKPT_ERR_INVALID: the range
 * lies beyond the region).
 * tierckpt_restore, after the regions are registered, fills them from the
 * held shard without fetching it again, and is collective as always: the
 * ranks first agree that every rank's regions match its shard; when one
 * does not, it fails on every rank (TIERCKPT_ERR_INVALID) with nothing
 * written into any rank's regions and nothing settled (later saves may use
 * any version number). */
tierckpt_status_t tierckpt_fetch(tierckpt_t *ckpt, int *found, uint64_t *version);
/* tierckpt_fetch_any: collective, as tierckpt_fetch, but versions saved by
 * another number of ranks count too (the newest complete version of any
 * number of ranks is found); *saved_ranks is the number of ranks that saved
 * it (0 when none is found). For a version of another number of ranks N,
 * this rank holds saved rank (rank mod N)'s shard, the one its replicated
 * regions will come from: a program reads its small values and the
 * saved layout from it (tierckpt_fetched_count, _region, _read: that saved
 * rank's regions and slices, not this rank's new ones), registers its
 * slices and
 * replicated regions, and tierckpt_restore restores that version
 * elastically, and no other (TIERCKPT_ERR_CORRUPT when it can no longer
 * be: fetch again). For a version of this number of ranks, exactly as
 * tierckpt_fetch. */
tierckpt_status_t tierckpt_fetch_any(tierckpt_t *ckpt, int *found, uint64_t *version, uint32_t *saved_ranks);
tierckpt_status_t tierckpt_fetched_count(const tierckpt_t *ckpt, size_t *count);
/* *name stays valid while the shard is held. */
tierckpt_status_t tierckpt_fetched_region(const tierckpt_t *ckpt, size_t index, const char **name, uint64_t *bytes);
tierckpt_status_t tierckpt_fetched_read(const tierckpt_t *ckpt, const char *name, uint64_t offset, void *dst,
                                        uint64_t bytes);
/* Releases the held shard (nothing when none is held). Not collective, but
 * the tierckpt_restore that follows is, and it restores from the held
 * shard where one is held: drop on every rank or on none. */
tierckpt_status_t tierckpt_fetch_drop(tierckpt_t *ckpt);

/* How this rank's regions reach the node store: "host" (no device
 * region), "cuda-direct" (device regions copied by DMA straight into the
 * store, registered with CUDA), "cuda-bounce" (the store could not be
 * registered: through pinned bounce buffers, slower; the log says why). */
const char *tierckpt_stage_path(const tierckpt_t *ckpt);

/* Where this rank's restored shard came from: "local" (this node's store),
 * "peer" (another node's), "persistent" (the persistent directory), or
 * "none". */
const char *tierckpt_restore_source(const tierckpt_t *ckpt);

typedef struct tierckpt_stats {
    uint64_t version;    /* of the newest save */
    uint64_t bytes;      /* this rank's shard */
    double wait_ms;      /* waiting for the previous save to commit */
    double stall_ms;     /* copying into the node store */
    double checksum_ms;  /* in the background */
    double commit_ms;    /* from the copy to the commit (0 until committed) */
    int committed;
    /* The persistent tier (appended in 0.1: fields are only ever added at
     * the end). */
    uint64_t persist_version;   /* newest version this job made complete there (0: none yet) */
    double persist_ms;          /* this rank's newest finished flush (background) */
    uint64_t persist_failures;  /* flushes of the job that failed */
    int persist_status;         /* tierckpt_status_t of the newest finished flush */
    uint64_t persist_skipped;   /* versions due for a flush while the previous one still ran */
    /* The pipeline of saves (appended in 0.2). */
    uint64_t committed_version; /* the newest committed version (0: none yet) */
    uint64_t superseded;        /* versions superseded before their copies began, since open */
    uint64_t room_waits;        /* saves that waited for the previous verdict because a node store had
                                 * no room for a third version, since open (appended in 0.3) */
} tierckpt_stats_t;

tierckpt_status_t tierckpt_get_stats(const tierckpt_t *ckpt, tierckpt_stats_t *stats);

/* Waits for a save in flight and for a flush to the persistent tier in
 * progress (whose version then becomes visible there), releases
 * everything; NULL is fine. */
tierckpt_status_t tierckpt_close(tierckpt_t *ckpt);

#ifdef __cplusplus
}
#endif

#endif /* TIERCKPT_TIERCKPT_H */
