#include "privilege.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace tck {

Status become_user(uid_t uid, gid_t gid) {
    if (uid == 0) return error(TIERCKPT_ERR_IO, "refusing to act for uid 0 on a user's behalf");
    uid_t ruid = 0, euid = 0, suid = 0;
    if (::getresuid(&ruid, &euid, &suid) == 0 && ruid == uid && euid == uid && suid == uid) return Status::ok();
    // The name for initgroups; a uid without one keeps only gid.
    struct passwd pwbuf {};
    struct passwd *pw = nullptr;
    std::vector<char> buf(16384);
    bool named = ::getpwuid_r(uid, &pwbuf, buf.data(), buf.size(), &pw) == 0 && pw != nullptr;
    if (!(named && ::initgroups(pw->pw_name, gid) == 0) && ::setgroups(1, &gid) != 0) {
        return error(TIERCKPT_ERR_IO, "cannot set the groups of uid {}: {}", uid, std::strerror(errno));
    }
    if (::setresgid(gid, gid, gid) != 0) {
        return error(TIERCKPT_ERR_IO, "cannot become gid {}: {}", gid, std::strerror(errno));
    }
    if (::setresuid(uid, uid, uid) != 0) {
        return error(TIERCKPT_ERR_IO, "cannot become uid {}: {}", uid, std::strerror(errno));
    }
    // No way back: a process that could regain root did not really drop it.
    if (::getuid() != uid || ::geteuid() != uid || ::getgid() != gid || ::getegid() != gid || ::setuid(0) == 0) {
        return error(TIERCKPT_ERR_IO, "dropping to uid {} gid {} did not hold", uid, gid);
    }
    return Status::ok();
}

}  // namespace tck
