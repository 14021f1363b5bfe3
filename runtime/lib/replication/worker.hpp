// The worker thread, one per rank. The rule: everything it runs runs on it,
// and after open only it touches the transport (through the Replicator).
// It never calls MPI.
//
// The application's thread hands it work two ways: the save in flight to
// checksum and announce (post_checksum), and one task at a time
// (post_task: restore's pull over the transport), which it waits for with
// wait_task / wait_task_or. Between those, the worker serves the peers
// (Replicator::serve) and sleeps on the transport or the wake-up eventfd.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "common/status.hpp"
#include "common/unique_fd.hpp"
#include "lib/replication/replicator.hpp"
#include "lib/save/inflight.hpp"

namespace tck {

class Worker {
public:
    Worker(Replicator &repl, InFlightSave &save) : repl_(repl), save_(save) {}
    ~Worker() { stop(); }
    Worker(const Worker &) = delete;
    Worker &operator=(const Worker &) = delete;

    Status start();  // the eventfd and the thread
    void stop();     // says goodbye to the watched peers, joins

    // ---- the application's thread ----
    // The save in flight is staging: checksum it behind the copy.
    void post_checksum();
    // Runs fn on the worker and returns at once. One task at a time.
    void post_task(std::function<Status()> fn);
    // Waits until the task is done or more() holds (checked at least every
    // millisecond); true when the task is done.
    bool wait_task_or(const std::function<bool()> &more);
    // Waits for the task; what it returned.
    Status wait_task();

    // ---- the worker thread (inside a task) ----
    // Wakes the application's thread in wait_task_or.
    void notify() { cv_.notify_all(); }

private:
    void loop();
    void wake();

    Replicator &repl_;
    InFlightSave &save_;
    UniqueFd wake_fd_;  // eventfd: the application's thread wakes the worker
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;                  // guarded by mu_
    bool checksum_pending_ = false;      // guarded by mu_
    std::function<Status()> task_;       // guarded by mu_: posted for the worker
    bool task_done_ = true;              // guarded by mu_
    Status task_status_;                 // guarded by mu_
};

}  // namespace tck
