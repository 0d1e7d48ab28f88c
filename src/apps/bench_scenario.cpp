// The proxy and http scenarios of `aioloop bench`: the servers under test (aioloop per backend,
// then haproxy or nginx as a peer) and what they share for the whole run: a temp dir that holds
// the peers' generated configurations and the file served, and, for proxy, one echo server
// upstream whose own counters say how many messages went through the proxy.

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>

#include <unistd.h>

#include <fmt/format.h>

#include <aioloop/apps/bench.hpp>

#include "apps/load_internal.hpp"

namespace aioloop::apps {

namespace {

namespace fs = std::filesystem;

// What the servers of one run share; the specs' hooks hold it, so it lives as long as they do.
struct scenario_state {
    fs::path dir;
    std::optional<server_process> upstream;
    std::uint16_t upstream_port = 0;
    std::map<std::string, double> upstream_before;
    std::shared_ptr<const std::string> body; ///< http: the file's bytes

    ~scenario_state() {
        if (upstream) {
            upstream->stop();
        }
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

// `name` on PATH, else in the sbin directories a user's PATH often lacks; "" if nowhere.
std::string find_program(const std::string& name) {
    std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
    path += ":/usr/sbin:/usr/local/sbin:/sbin";
    std::size_t begin = 0;
    while (begin <= path.size()) {
        auto end = path.find(':', begin);
        std::string dir = path.substr(begin, end == std::string::npos ? end : end - begin);
        if (!dir.empty()) {
            std::string candidate = dir + "/" + name;
            if (::access(candidate.c_str(), X_OK) == 0) {
                return candidate;
            }
        }
        if (end == std::string::npos) {
            break;
        }
        begin = end + 1;
    }
    return {};
}

tl::expected<void, std::string> write_file(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
        return tl::unexpected("cannot write " + path.string());
    }
    return {};
}

std::string max_connections(const bench_config& config) {
    auto counts = connection_counts(config);
    unsigned most = *std::max_element(counts.begin(), counts.end());
    return std::to_string(std::max(4096u, most + 64));
}

server_spec aioloop_spec(const bench_config& config,
                         const std::string& backend,
                         std::vector<std::string> command) {
    server_spec spec;
    spec.name = backend;
    spec.argv = {config.self_exe};
    spec.argv.insert(spec.argv.end(), command.begin(), command.end());
    for (const char* arg :
         {"--listen", "127.0.0.1:0", "--quiet", "--metrics", "127.0.0.1:0", "--backend"}) {
        spec.argv.push_back(arg);
    }
    spec.argv.push_back(backend);
    spec.expect_backend = backend;
    spec.pin = config.pin;
    return spec;
}

double metric(const std::map<std::string, double>& m, const std::string& key) {
    auto it = m.find(key);
    return it == m.end() ? 0 : it->second;
}

// The upstream's counters before and after the load: what went through the server under test.
void add_upstream_hooks(server_spec& spec, const std::shared_ptr<scenario_state>& state) {
    spec.upstream_pid = state->upstream->pid();
    spec.before_load = [state] {
        auto m = scrape_metrics(state->upstream->metrics_port());
        state->upstream_before = m ? *m : std::map<std::string, double>{};
    };
    spec.after_load = [state](bench_sample& s) {
        auto m = scrape_metrics(state->upstream->metrics_port());
        if (!m) {
            s.error = "upstream echo: " + m.error();
            return;
        }
        const std::string out = R"(aioloop_bytes_total{direction="out"})";
        s.has_upstream = true;
        s.upstream_requests = metric(*m, "aioloop_requests_total") -
                              metric(state->upstream_before, "aioloop_requests_total");
        s.upstream_bytes_out = metric(*m, out) - metric(state->upstream_before, out);
    };
}

tl::expected<bench_setup, std::string> proxy_setup(const bench_config& config,
                                                   std::shared_ptr<scenario_state> state) {
    // One upstream for the whole run, so every proxy forwards to the same, already warm, server.
    std::string backend;
    std::string why;
    for (const char* b : {"aio", "epoll"}) {
        server_spec spec =
            aioloop_spec(config, b, {"echo", "--max-connections", max_connections(config)});
        spec.name = "upstream";
        spec.core = 1;
        auto started = server_process::start(spec);
        if (started) {
            backend = b;
            state->upstream.emplace(std::move(*started));
            break;
        }
        why += std::string(why.empty() ? "" : "; ") + b + ": " + started.error();
    }
    if (!state->upstream) {
        return tl::unexpected("the upstream echo server failed to start: " + why);
    }
    state->upstream_port = state->upstream->port();
    std::string target = fmt::format("127.0.0.1:{}", state->upstream_port);
    bench_setup setup;
    setup.note =
        fmt::format("upstream: one `aioloop echo --backend {}` at {} for the whole run, {}; "
                    "syscalls and CPU are the proxy's alone, messages counted by the "
                    "upstream",
                    backend,
                    target,
                    config.pin ? "on core 1 with the load generator (2 cores: only the "
                                 "proxy has a core to itself)"
                               : "not pinned");
    for (const auto& b : config.backends) {
        server_spec spec = aioloop_spec(config, b, {"proxy", "--upstream", target});
        add_upstream_hooks(spec, state);
        setup.servers.push_back(std::move(spec));
    }
    server_spec haproxy;
    haproxy.name = "haproxy";
    haproxy.aioloop = false;
    haproxy.pin = config.pin;
    haproxy.argv = {find_program("haproxy")};
    if (haproxy.argv[0].empty()) {
        haproxy.missing = "skipped: haproxy is not installed (apt-get install haproxy)";
    }
    haproxy.make_argv =
        [state, target, exe = haproxy.argv[0]](
            std::uint16_t port,
            unsigned connections) -> tl::expected<std::vector<std::string>, std::string> {
        // TCP mode, one thread, no log section: the same job as `aioloop proxy`.
        auto cfg = state->dir / "haproxy.cfg";
        auto written = write_file(cfg,
                                  fmt::format("global\n    nbthread 1\n    maxconn {}\n"
                                              "defaults\n    mode tcp\n    timeout connect 5s\n"
                                              "    timeout client 600s\n    timeout server 600s\n"
                                              "frontend fe\n    bind 127.0.0.1:{}\n"
                                              "    default_backend be\n"
                                              "backend be\n    server s1 {}\n",
                                              connections * 2 + 64,
                                              port,
                                              target));
        if (!written) {
            return tl::unexpected(written.error());
        }
        return std::vector<std::string>{exe, "-f", cfg.string(), "-db"};
    };
    add_upstream_hooks(haproxy, state);
    setup.servers.push_back(std::move(haproxy));
    return setup;
}

tl::expected<bench_setup, std::string> http_setup(const bench_config& config,
                                                  std::shared_ptr<scenario_state> state) {
    auto root = state->dir / "root";
    std::error_code ec;
    fs::create_directories(root, ec);
    // Pseudo-random bytes, so that a body served from the wrong offset cannot pass the check.
    std::string content(config.size, '\0');
    detail::fill_pattern(0x6174746e, 0, std::as_writable_bytes(std::span(content)));
    if (auto written = write_file(root / "file", content); !written) {
        return tl::unexpected(written.error());
    }
    state->body = std::make_shared<const std::string>(std::move(content));
    auto prepare = [state](load_config& load) {
        load.protocol = load_protocol::http;
        load.http_path = "/file";
        load.http_body = state->body;
    };
    bench_setup setup;
    setup.note = fmt::format("GET /file ({} bytes, from {}, in the page cache) on persistent "
                             "connections; nginx: 1 worker, master_process off, sendfile on, "
                             "access_log off",
                             config.size,
                             root.string());
    for (const auto& b : config.backends) {
        server_spec spec = aioloop_spec(config, b, {"http", "--root", root.string()});
        spec.prepare_load = prepare;
        setup.servers.push_back(std::move(spec));
    }
    server_spec nginx;
    nginx.name = "nginx";
    nginx.aioloop = false;
    nginx.pin = config.pin;
    nginx.argv = {find_program("nginx")};
    if (nginx.argv[0].empty()) {
        nginx.missing = "skipped: nginx is not installed (apt-get install nginx-light)";
    }
    nginx.prepare_load = prepare;
    nginx.make_argv = [state, root, exe = nginx.argv[0]](std::uint16_t port, unsigned connections)
        -> tl::expected<std::vector<std::string>, std::string> {
        // master_process off: the pid started is the one worker that serves, as measured.
        const std::string d = state->dir.string();
        auto cfg = state->dir / "nginx.conf";
        auto written = write_file(
            cfg,
            fmt::format("daemon off;\nmaster_process off;\nworker_processes 1;\n"
                        "error_log {0}/nginx-error.log error;\npid {0}/nginx.pid;\n"
                        "events {{ worker_connections {1}; }}\n"
                        "http {{\n    access_log off;\n    sendfile on;\n"
                        "    keepalive_requests 1000000000;\n    keepalive_timeout 600s;\n"
                        "    default_type application/octet-stream;\n"
                        // Like aioloop http's open-file cache (revalidated after 1 s): without
                        // it nginx opens, stats and closes the file on every request.
                        "    open_file_cache max=1024 inactive=60s;\n"
                        "    open_file_cache_valid 1s;\n"
                        "    client_body_temp_path {0}/body;\n    proxy_temp_path {0}/proxy;\n"
                        "    fastcgi_temp_path {0}/fastcgi;\n    uwsgi_temp_path {0}/uwsgi;\n"
                        "    scgi_temp_path {0}/scgi;\n"
                        "    server {{\n        listen 127.0.0.1:{2};\n        root {3};\n    }}\n"
                        "}}\n",
                        d,
                        connections * 2 + 64,
                        port,
                        root.string()));
        if (!written) {
            return tl::unexpected(written.error());
        }
        return std::vector<std::string>{
            exe, "-p", d + "/", "-c", cfg.string(), "-e", d + "/nginx-error.log"};
    };
    setup.servers.push_back(std::move(nginx));
    return setup;
}

} // namespace

tl::expected<bench_setup, std::string> scenario_setup(const bench_config& config) {
    if (config.scenario != "proxy" && config.scenario != "http") {
        return tl::unexpected("unknown scenario " + config.scenario + " (echo, proxy or http)");
    }
    auto state = std::make_shared<scenario_state>();
    std::string pattern = (fs::temp_directory_path() / "aioloop-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        return tl::unexpected("mkdtemp(" + pattern + "): " + std::strerror(errno));
    }
    state->dir = pattern;
    return config.scenario == "proxy" ? proxy_setup(config, state) : http_setup(config, state);
}

} // namespace aioloop::apps
