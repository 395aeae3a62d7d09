#pragma once
// A throwaway ZooKeeper server for tests: Debian's zookeeper package, standalone, bound
// to 127.0.0.1 on a free port, its own temp data dir, killed by PID. Equivalent shell
// (documented for the Python integration tests):
//   cat > $DIR/zoo.cfg <<EOF
//   tickTime=500
//   dataDir=$DIR/data
//   clientPort=$PORT
//   clientPortAddress=127.0.0.1
//   minSessionTimeout=1000
//   maxSessionTimeout=60000
//   admin.enableServer=false
//   4lw.commands.whitelist=ruok,srvr
//   EOF
//   java -Xmx256m -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-nop.jar
//        org.apache.zookeeper.server.ZooKeeperServerMain $DIR/zoo.cfg     (one line)
// Ready when "srvr" on the port reports a Zxid (e.g. echo srvr | nc 127.0.0.1 $PORT). tickTime 500 lets tests use sessions as
// short as 1 s. Concurrency: one test thread uses a zk_server.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace sluice::coord::test {

inline int free_loopback_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        if (fd >= 0) ::close(fd);
        return -1;
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

// One "srvr" probe: true once the server serves requests ("ruok" answers "imok" as soon
// as the port listens, before sessions are accepted; "srvr" reports a Zxid only then).
inline bool zk_serving(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    timeval tv{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string reply;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 && ::write(fd, "srvr", 4) == 4) {
        char buf[512];
        for (int i = 0; i < 8; ++i) {  // bounded: the server closes after answering
            ssize_t n = ::read(fd, buf, sizeof(buf));
            if (n <= 0) break;
            reply.append(buf, size_t(n));
        }
    }
    ::close(fd);
    return reply.find("Zxid:") != std::string::npos;
}

class zk_server {
public:
    zk_server() {
        char tmpl[] = "/tmp/sluice-zk-XXXXXX";
        _dir = ::mkdtemp(tmpl) ? tmpl : "";
        _port = free_loopback_port();
        std::filesystem::create_directories(_dir + "/data");
        std::ofstream(_dir + "/zoo.cfg") << "tickTime=500\ndataDir=" << _dir << "/data\nclientPort=" << _port
                                         << "\nclientPortAddress=127.0.0.1\nminSessionTimeout=1000\n"
                                            "maxSessionTimeout=60000\nadmin.enableServer=false\n"
                                            "4lw.commands.whitelist=ruok,srvr\n";
        start();
    }
    ~zk_server() {
        stop();
        std::error_code ec;
        if (!_dir.empty()) std::filesystem::remove_all(_dir, ec);
    }
    zk_server(const zk_server&) = delete;
    zk_server& operator=(const zk_server&) = delete;

    // Starts (or restarts, same port and data) and waits up to 30 s until it serves.
    bool start() {
        if (_pid > 0) return true;
        std::string cfg = _dir + "/zoo.cfg", log = _dir + "/zk.log";
        std::fflush(nullptr);  // or the child would flush our buffered output a second time
        _pid = ::fork();
        if (_pid == 0) {
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                ::dup2(fd, STDOUT_FILENO);
                ::dup2(fd, STDERR_FILENO);
            }
            ::execl("/usr/bin/java", "java", "-Xmx256m", "-cp",
                    "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-nop.jar",
                    "org.apache.zookeeper.server.ZooKeeperServerMain", cfg.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (std::chrono::steady_clock::now() < deadline) {
            if (zk_serving(_port)) return _ready = true;
            int status = 0;
            if (::waitpid(_pid, &status, WNOHANG) == _pid) break;  // died: port taken?
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        stop();
        return false;
    }

    // SIGKILL, like a crash: sessions survive in the data dir for a restart.
    void stop() {
        if (_pid <= 0) return;
        ::kill(_pid, SIGKILL);
        ::waitpid(_pid, nullptr, 0);
        _pid = -1;
        _ready = false;
    }

    bool ready() const { return _ready; }
    int port() const { return _port; }
    std::string connect() const { return "127.0.0.1:" + std::to_string(_port); }

private:
    std::string _dir;
    int _port = -1;
    pid_t _pid = -1;
    bool _ready = false;
};

}  // namespace sluice::coord::test
