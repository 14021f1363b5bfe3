// Helpers for the fuzz targets.
#pragma once

#include <ftw.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace tck::fuzz {

// A private scratch directory on /dev/shm for one fuzzing process,
// emptied between inputs and removed at exit.
class ScratchDir {
public:
    explicit ScratchDir(const char *prefix) {
        std::string tmpl = std::string("/dev/shm/") + prefix + "-XXXXXX";
        path_.assign(tmpl);
        if (!::mkdtemp(path_.data())) std::abort();
    }
    ~ScratchDir() {
        clear();
        ::rmdir(path_.c_str());
    }
    const std::string &path() const { return path_; }
    void clear() const {
        // Depth first, not following links; the directory itself stays.
        ::nftw(
            path_.c_str(),
            [](const char *p, const struct stat *, int, struct FTW *ftw) {
                if (ftw->level > 0) ::remove(p);
                return 0;
            },
            16, FTW_DEPTH | FTW_PHYS);
    }

private:
    std::string path_;
};

}  // namespace tck::fuzz
