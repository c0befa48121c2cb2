// quid serve: a host. Stores shards for the tenants it admits, inside the space it
// contributes, until SIGINT or SIGTERM. Runs in the foreground (a service manager, or
// `quid demo`, keeps it).
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cmd/commands.h"
#include "cmd/home.h"
#include "cmd/logging.h"
#include "cmd/network_stores.h"
#include "cmd/signal_watcher.h"
#include "cmd/size_parse.h"
#include "net/host_server.h"
#include "net/host_service.h"

namespace quid {
namespace {

constexpr const char* kName = "serve";

struct ServeArgs {
  std::string home;
  std::string listen;
  std::string contribute;
  std::vector<std::string> tenants;
  std::string scrub_interval = "3600";
};

int RunServe(const ServeArgs& args) {
  UseForegroundLogging();
  Result<std::string> home = ResolveHome(args.home);
  if (!home.ok()) return Fail(kName, home.status().message());
  std::error_code ec;
  std::filesystem::create_directories(*home, ec);
  if (ec) return Fail(kName, *home + ": " + ec.message());
  Result<uint64_t> contribution = ParseSize(args.contribute);
  if (!contribution.ok() || *contribution == 0)
    return Fail(kName, "--contribute needs a size above 0, e.g. 10G");
  net::HostServerOptions server;
  Status split = SplitHostPort(args.listen, &server.listen_host, &server.port);
  if (!split.ok()) return Fail(kName, "--listen: " + split.message());
  for (const std::string& fp : args.tenants) {
    if (fp.size() != 32 || fp.find_first_not_of("0123456789abcdef") != std::string::npos)
      return Fail(kName, "--tenant " + fp + ": not a node fingerprint (32 hex characters)");
  }
  const long scrub_seconds = std::strtol(args.scrub_interval.c_str(), nullptr, 10);

  // Signals first: every thread started after this inherits the blocked mask.
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  SignalWatcher signals([&](int signo) {
    spdlog::info("signal {}: stopping", signo);
    std::lock_guard lock(mu);
    stop = true;
    cv.notify_all();
  });

  Result<net::NodeIdentity> identity = LoadNodeIdentity(*home);
  if (!identity.ok()) return Fail(kName, identity.status().message());
  net::HostServiceOptions service_options;
  service_options.data_dir = *home + "/host";
  service_options.contribution_bytes = *contribution;
  service_options.tenant_fingerprints = args.tenants;
  auto service = net::HostService::Open(service_options);
  if (!service.ok()) return Fail(kName, service.status().message());
  server.identity = *identity;
  server.service = service->get();
  auto running = net::HostServer::Start(server);
  if (!running.ok())
    return Fail(kName, "listen on " + args.listen + ": " + running.status().message());

  spdlog::info("serving as {} on {}:{}, contributing {} ({} used) to {} tenant(s)",
               identity->fingerprint(), server.listen_host, (*running)->port(),
               FormatSize(*contribution), FormatSize((*service)->used_bytes()),
               args.tenants.size());
  // The scrub re-reads every shard now and then, so rot is found before a tenant needs it.
  auto next_scrub = std::chrono::steady_clock::now() + std::chrono::seconds(scrub_seconds);
  std::unique_lock lock(mu);
  while (!stop) {
    if (scrub_seconds > 0 && cv.wait_until(lock, next_scrub) == std::cv_status::timeout) {
      lock.unlock();
      net::ScrubReport report = (*service)->Scrub();
      spdlog::info("scrub: {} shards checked, {} corrupt", report.shards_checked,
                   report.shards_corrupt);
      lock.lock();
      next_scrub = std::chrono::steady_clock::now() + std::chrono::seconds(scrub_seconds);
    } else if (scrub_seconds <= 0) {
      cv.wait(lock);
    }
  }
  lock.unlock();
  (*running)->Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

Command AddServeCommand(CLI::App& quid) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* app = quid.add_subcommand(
      "serve", "Host shards for admitted tenants within the space you contribute");
  app->add_option("--home", args->home,
                  "Home folder (default: $QUID_HOME, else ~/.local/share/quid)")
      ->option_text("H");
  app->add_option("--listen", args->listen, "Address to listen on, e.g. 127.0.0.1:7001")
      ->option_text("HOST:PORT")
      ->required();
  app->add_option("--contribute", args->contribute, "Disk space given to tenants, e.g. 10G")
      ->option_text("SIZE")
      ->required();
  app->add_option("--tenant", args->tenants, "Fingerprint of a tenant to admit (repeatable)")
      ->option_text("FINGERPRINT");
  app->add_option("--scrub-interval", args->scrub_interval,
                  "Seconds between scrubs that re-read every shard (0: never; default 3600)")
      ->option_text("SECONDS");
  return {app, [args] { return RunServe(*args); }};
}

}  // namespace quid
