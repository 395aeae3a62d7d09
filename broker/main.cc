// build/sluice CONFIG.properties [--override key=value ...]
// Runs one broker in the foreground, logging to stderr. Exit status: 0 after a clean
// shutdown (SIGINT/SIGTERM), 2 for a bad command line or config (one line naming the
// key), 1 for a fatal start-up error (ZooKeeper, log dirs, listeners).
#include "base/log.h"
#include "broker/config.h"
#include "broker/server.h"

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    using namespace sluice;
    std::string config_path;
    std::vector<std::string> overrides;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--override") {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "sluice: --override needs key=value\n");
                return 2;
            }
            overrides.emplace_back(argv[++i]);
        } else if (arg.rfind("--override=", 0) == 0) {
            overrides.push_back(arg.substr(11));
        } else if (arg == "-h" || arg == "--help") {
            std::fprintf(stdout, "usage: %s CONFIG.properties [--override key=value ...]\n", argv[0]);
            return 0;
        } else if (config_path.empty()) {
            config_path = arg;
        } else {
            std::fprintf(stderr, "sluice: unexpected argument '%s'\n", arg.c_str());
            return 2;
        }
    }
    if (config_path.empty()) {
        std::fprintf(stderr, "usage: %s CONFIG.properties [--override key=value ...]\n", argv[0]);
        return 2;
    }
    auto loaded = broker::load_config(config_path, overrides);
    if (auto* err = std::get_if<broker::config_error>(&loaded)) {
        std::fprintf(stderr, "sluice: %s\n", err->message.c_str());
        return 2;
    }
    if (const char* lvl = std::getenv("SLUICE_LOG_LEVEL"); lvl && std::string(lvl) == "debug")
        log::set_level(log::level::debug);
    broker::server srv(std::get<broker::broker_config>(std::move(loaded)));
    return srv.run();
}
