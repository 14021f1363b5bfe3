#include "worker.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace tck {

Status Worker::start() {
    wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_fd_) return error(TIERCKPT_ERR_IO, "eventfd: {}", std::strerror(errno));
    thread_ = std::thread([this] { loop(); });
    return Status::ok();
}

void Worker::stop() {
    if (!thread_.joinable()) return;
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = true;
    }
    wake();
    thread_.join();
}

void Worker::wake() {
    std::uint64_t one = 1;
    (void)!::write(wake_fd_.get(), &one, sizeof one);
}

void Worker::post_checksum() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        checksum_pending_ = true;
    }
    wake();
}

void Worker::post_task(std::function<Status()> fn) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        task_ = std::move(fn);
        task_done_ = false;
    }
    wake();
}

bool Worker::wait_task_or(const std::function<bool()> &more) {
    std::unique_lock<std::mutex> lk(mu_);
    // A timed wait: notify() comes without the lock.
    cv_.wait_for(lk, std::chrono::milliseconds(1), [&] { return task_done_ || more(); });
    return task_done_;
}

Status Worker::wait_task() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [this] { return task_done_; });
    return task_status_;
}

void Worker::loop() {
    for (;;) {
        bool checksum = false;
        std::function<Status()> task;
        {
            std::lock_guard<std::mutex> lk(mu_);
            if (stop_) break;
            checksum = std::exchange(checksum_pending_, false);
            task = std::exchange(task_, nullptr);
        }
        if (checksum) repl_.checksum_and_announce(save_);
        if (task) {
            Status st = task();
            std::lock_guard<std::mutex> lk(mu_);
            task_status_ = st;
            task_done_ = true;
            cv_.notify_all();
        }
        repl_.serve(save_);
        {
            std::lock_guard<std::mutex> lk(mu_);
            if (stop_ || checksum_pending_ || task_) continue;
        }
        repl_.wait(wake_fd_.get());
        std::uint64_t drain;
        while (::read(wake_fd_.get(), &drain, sizeof drain) > 0) {
        }
    }
    repl_.farewell();
}

}  // namespace tck
