// quid serve: the node daemon (cmd/node_daemon.h): hosts partners' shards under their
// leases within the space it contributes, pairs, sends heartbeats, answers node.sock, until
// SIGINT or SIGTERM. Runs in the foreground (a service manager, or `quid demo`, keeps it).
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
#include "cmd/duration_parse.h"
#include "cmd/home.h"
#include "cmd/logging.h"
#include "cmd/network_stores.h"
#include "cmd/node_daemon.h"
#include "cmd/signal_watcher.h"
#include "cmd/size_parse.h"

namespace quid {
namespace {

constexpr const char* kName = "serve";

struct ServeArgs {
  std::string home;
  std::string listen;
  std::string contribute;
  std::vector<std::string> tenants;
  std::string scrub_interval = "3600";
  std::string lease_term = "30d";
  std::string notice = "7d";
  std::string grace = "7d";
  std::string heartbeat = "10s";
  std::vector<std::string> labels;
};

Result<int64_t> DurationFlag(const char* flag, const std::string& text) {
  Result<int64_t> ms = ParseDuration(text);
  if (!ms.ok()) return Status::Invalid(std::string(flag) + ": " + ms.status().message());
  if (*ms <= 0) return Status::Invalid(std::string(flag) + " needs a duration above 0");
  return ms;
}

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
  NodeDaemonOptions options;
  options.home = *home;
  options.contribution_bytes = *contribution;
  Status split = SplitHostPort(args.listen, &options.listen_host, &options.port);
  if (!split.ok()) return Fail(kName, "--listen: " + split.message());
  for (const std::string& fp : args.tenants) {
    if (fp.size() != 32 || fp.find_first_not_of("0123456789abcdef") != std::string::npos)
      return Fail(kName, "--tenant " + fp + ": not a node fingerprint (32 hex characters)");
  }
  options.tenants = args.tenants;
  for (const std::string& label : args.labels) {
    const size_t eq = label.find('=');
    if (eq == 0 || eq == std::string::npos || eq + 1 == label.size())
      return Fail(kName, "--label " + label + ": not KEY=VALUE");
    // Peers keep at most 16 labels of 64 bytes each (net/pairing.cc).
    if (label.size() > 64) return Fail(kName, "--label " + label + ": longer than 64 bytes");
  }
  if (args.labels.size() > 16) return Fail(kName, "at most 16 --label flags");
  options.labels = args.labels;
  Result<int64_t> term = DurationFlag("--lease-term", args.lease_term);
  Result<int64_t> notice = DurationFlag("--notice", args.notice);
  Result<int64_t> grace = DurationFlag("--grace", args.grace);
  Result<int64_t> heartbeat = DurationFlag("--heartbeat", args.heartbeat);
  for (const Result<int64_t>* r : {&term, &notice, &grace, &heartbeat})
    if (!r->ok()) return Fail(kName, r->status().message());
  // Durations parse to nanoseconds; leases count in whole seconds (a term below one second
  // is one second), heartbeats in milliseconds.
  constexpr int64_t kNsPerSecond = 1'000'000'000, kNsPerMs = 1'000'000;
  options.policy.term_s = std::max<int64_t>(*term / kNsPerSecond, 1);
  options.policy.notice_s = *notice / kNsPerSecond;
  options.grace_s = *grace / kNsPerSecond;
  options.heartbeat_ms = std::max<int64_t>(*heartbeat / kNsPerMs, 1);
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

  auto daemon = NodeDaemon::Start(options);
  if (!daemon.ok()) {
    const Status& s = daemon.status();
    if (s.code() == Code::kUnavailable)
      return Fail(kName, "listen on " + args.listen + ": " + s.message());
    return Fail(kName, s.message());
  }
  spdlog::info("node {} serving on {}:{}, contributing {} ({} used), {} standing tenant(s)",
               (*daemon)->fingerprint(), options.listen_host, (*daemon)->port(),
               FormatSize(*contribution), FormatSize((*daemon)->used_bytes()), args.tenants.size());
  // The scrub re-reads every shard now and then, so rot is found before a tenant needs it.
  auto next_scrub = std::chrono::steady_clock::now() + std::chrono::seconds(scrub_seconds);
  std::unique_lock lock(mu);
  while (!stop) {
    if (scrub_seconds > 0 && cv.wait_until(lock, next_scrub) == std::cv_status::timeout) {
      lock.unlock();
      (*daemon)->Scrub();
      lock.lock();
      next_scrub = std::chrono::steady_clock::now() + std::chrono::seconds(scrub_seconds);
    } else if (scrub_seconds <= 0) {
      cv.wait(lock);
    }
  }
  lock.unlock();
  (*daemon)->Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

Command AddServeCommand(CLI::App& quid) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* app = quid.add_subcommand(
      "serve",
      "Run this node: host partners' shards within the space you contribute, pair, heartbeat");
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
  app->add_option("--lease-term", args->lease_term,
                  "Term of the leases this node opens (default 30d); renewed past half of it")
      ->option_text("D");
  app->add_option("--notice", args->notice, "Notice before a change of what is given (default 7d)")
      ->option_text("D");
  app->add_option("--grace", args->grace,
                  "How long a tenant's shards stay after its lease ended (default 7d)")
      ->option_text("D");
  app->add_option("--heartbeat", args->heartbeat, "Interval between heartbeats (default 10s)")
      ->option_text("D");
  app->add_option("--label", args->labels, "Failure-domain label, e.g. site=home (repeatable)")
      ->option_text("KEY=VALUE");
  app->add_option("--scrub-interval", args->scrub_interval,
                  "Seconds between scrubs that re-read every shard (0: never; default 3600)")
      ->option_text("SECONDS");
  return {app, [args] { return RunServe(*args); }};
}

}  // namespace quid
