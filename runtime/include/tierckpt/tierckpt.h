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

#ifdef __cplusplus
}
#endif

#endif /* TIERCKPT_TIERCKPT_H */
