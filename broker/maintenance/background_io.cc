#include "broker/maintenance/background_io.h"

namespace sluice::broker {

void background_io::start() {
    std::lock_guard g(_mutex);
    if (_running || _stopping) return;
    _running = true;
    _thread = std::thread([this] { run(); });
}

void background_io::stop() {
    std::deque<job> dropped;
    {
        std::lock_guard g(_mutex);
        _stopping = true;
        dropped.swap(_jobs);
        _cv.notify_all();
    }
    if (_thread.joinable()) _thread.join();
    for (auto& j : dropped)
        if (j.cancel) j.cancel();
}

bool background_io::submit(std::function<void()> run, std::function<void()> cancel) {
    std::lock_guard g(_mutex);
    if (!_running || _stopping) return false;
    _jobs.push_back({std::move(run), std::move(cancel)});
    _cv.notify_one();
    return true;
}

size_t background_io::queued() const {
    std::lock_guard g(_mutex);
    return _jobs.size();
}

void background_io::run() {
    while (true) {
        job j;
        {
            std::unique_lock lock(_mutex);
            _cv.wait(lock, [this] { return _stopping || !_jobs.empty(); });
            if (_stopping) return;
            j = std::move(_jobs.front());
            _jobs.pop_front();
        }
        j.run();
    }
}

}  // namespace sluice::broker
