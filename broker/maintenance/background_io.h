#pragma once
// Blocking file work kept off the reactor threads: fdatasync of segment files for log
// flushes (flush.messages / flush.ms / segment rolls) and the periodic checkpoint files.
// One worker thread, FIFO: flushes are sequential on a disk anyway, and one thread keeps
// checkpoint writes ordered.
//
// Lifetime: jobs own what they touch (shared_ptr<segment> keeps the .log descriptor
// open even if the segment is deleted meanwhile; paths are copied). A job that reports
// back posts to a shard, so the server stops this queue (stop() waits for the running
// job, drops queued ones after running their `cancel`) before it stops the shards.
//
// Concurrency: submit() and stop() from any thread; jobs run on the worker thread.
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace sluice::broker {

class background_io {
public:
    background_io() = default;
    ~background_io() { stop(); }
    background_io(const background_io&) = delete;
    background_io& operator=(const background_io&) = delete;

    void start();
    // Runs the job in progress to its end; queued jobs get `cancel` instead. Idempotent.
    void stop();
    // false (and nothing queued) once stopped: the caller undoes its bookkeeping.
    bool submit(std::function<void()> job, std::function<void()> cancel = {});
    size_t queued() const;

private:
    void run();

    struct job {
        std::function<void()> run;
        std::function<void()> cancel;
    };
    mutable std::mutex _mutex;
    std::condition_variable _cv;
    std::deque<job> _jobs;
    bool _running = false;
    bool _stopping = false;
    std::thread _thread;
};

}  // namespace sluice::broker
