// Giving up root before touching what a user controls (their node store,
// their persistent directory). Privileged code never follows a user's
// paths as root: it becomes the user first, so the kernel applies the
// user's own permissions to every path and every file it makes.
#pragma once

#include <sys/types.h>

#include "status.hpp"

namespace tck {

// Becomes uid/gid for good: real, effective and saved ids (setresgid, then
// setresuid), with the user's supplementary groups (initgroups with the
// name the password database gives uid; only gid when it has none, so a
// directory shared through a group stays reachable). Checks afterwards
// that root cannot be regained. glibc applies the change to every thread
// of the process. Does nothing when the process already runs as uid (and
// is not root); fails (TIERCKPT_ERR_IO) for uid 0 or when the
// process may not change ids. Not reversible: call it in a process, or a
// forked child, that has nothing left to do as root.
Status become_user(uid_t uid, gid_t gid);

}  // namespace tck
