// quid check [--home H] [--deep] [--repair] [--json]: the volume's chunk records against its
// stores. A mounted volume is checked inside its mount daemon (the one process with the
// volume open); an unmounted one is opened here, as a mount would open it (the passphrase or
// key file, the node's leases), checked, and closed.
// A progress bar on a terminal, plain lines otherwise, a summary line at the end.
// Exit 0 when every chunk is recoverable (and, with --repair, repaired); 1 otherwise.
#include <unistd.h>

#include <fmt/format.h>
#include <sodium.h>
#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>

#include "cmd/commands.h"
#include "cmd/control_socket.h"
#include "cmd/home.h"
#include "cmd/key_flags.h"
#include "cmd/network_stores.h"
#include "cmd/status_json.h"
#include "storage/volume/volume.h"

namespace quid {
namespace {

constexpr const char* kName = "check";
// A check sends a progress line at least every few seconds while it works; a daemon silent
// for this long is stuck or gone.
constexpr int kLineTimeoutMs = 600'000;

struct CheckArgs {
  std::string home;
  bool deep = false;
  bool repair = false;
  bool json = false;
  KeyFlags key;
};

// Shows "progress PHASE DONE TOTAL": a bar redrawn in place on a terminal; elsewhere a line
// per phase and per tenth of it, so a log stays short.
class ProgressView {
 public:
  explicit ProgressView(bool terminal) : terminal_(terminal) {}
  void Show(const std::string& phase, uint64_t done, uint64_t total) {
    if (terminal_) {
      constexpr int kWidth = 30;
      const int filled =
          total == 0 ? kWidth : static_cast<int>(static_cast<double>(done) / total * kWidth);
      fmt::print(stderr, "\r{:<10} [{:<{}}] {}/{}   ", phase, std::string(filled, '#'), kWidth,
                 done, total);
      std::fflush(stderr);
      drawn_ = true;
      return;
    }
    const uint64_t tenth = total == 0 ? 10 : done * 10 / total;
    if (phase == phase_ && tenth == tenth_) return;
    phase_ = phase;
    tenth_ = tenth;
    fmt::print("{} {}/{}\n", phase, done, total);
    std::fflush(stdout);
  }
  void Done() {
    if (drawn_) fmt::print(stderr, "\n");
  }

 private:
  bool terminal_;
  bool drawn_ = false;
  std::string phase_;
  uint64_t tenth_ = ~uint64_t{0};
};

void PrintReport(const CheckReport& r, bool repair) {
  for (const std::string& line : r.stores_unreachable) fmt::print("unreachable  {}\n", line);
  for (const std::string& line : r.problems) fmt::print("problem      {}\n", line);
  if (r.orphan_shards > 0)
    fmt::print(
        "orphans      {} shards no record names ({} younger than the sweep's grace, "
        "perhaps uploads in flight); the sweep removes them\n",
        r.orphan_shards, r.orphans_recent);
  fmt::print(
      "{} chunks: {} shards good, {} missing, {} corrupt, {} on unreachable stores; {} "
      "unrecoverable{}\n",
      r.chunks, r.shards_checked, r.shards_missing, r.shards_corrupt, r.shards_unchecked,
      r.chunks_unrecoverable,
      repair ? fmt::format("; {} chunks repaired", r.chunks_repaired) : std::string());
}

// The exit code for a finished check, after its report is shown.
int Conclude(const CheckArgs& args, const CheckReport& report, const std::string& json) {
  if (args.json) {
    fmt::print("{}\n", json);
  } else {
    PrintReport(report, args.repair);
  }
  const bool left_bad = args.repair && report.chunks_repaired == 0 &&
                        report.shards_missing + report.shards_corrupt > 0;
  if (report.chunks_unrecoverable > 0)
    return Fail(kName, fmt::format("{} chunks cannot be recovered", report.chunks_unrecoverable));
  if (left_bad) return Fail(kName, "the missing and corrupt shards could not be rebuilt");
  return 0;
}

// The check of a mounted volume, in its mount daemon, over the control socket.
int CheckInDaemon(const CheckArgs& args, ControlConnection& connection) {
  std::string request = "check";
  if (args.deep) request += " deep";
  if (args.repair) request += " repair";
  if (Status sent = connection.Send(request); !sent.ok()) return Fail(kName, sent.message());
  ProgressView view(!args.json && ::isatty(STDERR_FILENO));
  for (;;) {
    Result<std::string> line = connection.ReadLine(kLineTimeoutMs);
    if (!line.ok()) {
      view.Done();
      return Fail(kName, "the mount daemon stopped answering: " + line.status().message());
    }
    if (line->starts_with("progress ")) {
      std::istringstream words(line->substr(9));
      std::string phase;
      uint64_t done = 0, total = 0;
      if (words >> phase >> done >> total && !args.json) view.Show(phase, done, total);
      continue;
    }
    view.Done();
    if (line->starts_with("error ")) return Fail(kName, line->substr(6));
    if (!line->starts_with("report ")) return Fail(kName, "unexpected reply: " + *line);
    Result<CheckReport> report = CheckReportFromJson(line->substr(7));
    if (!report.ok()) return Fail(kName, report.status().message());
    return Conclude(args, *report, line->substr(7));
  }
}

// The check of an unmounted volume: opened here as a mount opens it (which also stores
// what its journal still holds), checked (and repaired) by this process, closed.
int CheckHere(const CheckArgs& args, const std::string& home) {
  VolumeOpenOptions options;
  options.home = home;
  options.store_factory = MakeNetworkStoreFactory(home);
  options.lease_hosts = FollowLeaseHosts(home);
  if (Status key = ResolveKey(args.key, &options.key_file, &options.passphrase); !key.ok())
    return Fail(kName, key.message());
  Result<std::unique_ptr<Volume>> opened = Volume::Open(options);
  sodium_memzero(options.passphrase.data(), options.passphrase.size());
  if (!opened.ok()) return Fail(kName, opened.status().message());
  std::unique_ptr<Volume> volume = std::move(opened).value();
  for (const std::string& warning : volume->OpenWarnings())
    fmt::print(stderr, "quid check: {}\n", warning);

  ProgressView view(!args.json && ::isatty(STDERR_FILENO));
  CheckOptions check;
  check.deep = args.deep;
  check.repair = args.repair;
  Result<CheckReport> report = volume->Check(check, [&](const CheckProgress& p) {
    if (!args.json) view.Show(p.phase, p.done, p.total);
  });
  view.Done();
  const Status closed = volume->Close();
  if (!report.ok()) return Fail(kName, report.status().message());
  if (!closed.ok()) fmt::print(stderr, "quid check: closing the volume: {}\n", closed.message());
  return Conclude(args, *report, CheckReportToJson(*report));
}

int RunCheck(const CheckArgs& args) {
  Result<std::string> home = ResolveHome(args.home);
  if (!home.ok()) return Fail(kName, home.status().message());
  Result<ControlConnection> connection = ControlConnection::Connect(ControlSocketPath(*home));
  if (connection.ok()) return CheckInDaemon(args, *connection);
  if (connection.status().code() != Code::kUnavailable)
    return Fail(kName, connection.status().message());
  if (!std::filesystem::is_directory(*home))
    return Fail(kName, "no volume in " + *home + " (run quid init first)");
  return CheckHere(args, *home);
}

}  // namespace

Command AddCheckCommand(CLI::App& quid) {
  auto args = std::make_shared<CheckArgs>();
  CLI::App* app = quid.add_subcommand(
      kName,
      "Check the volume's records against its stores: every shard where a record says (exit 1 "
      "if any chunk is unrecoverable); an unmounted volume is opened for it");
  app->add_option("--home", args->home,
                  "The node's home folder (default $QUID_HOME or "
                  "~/.local/share/quid)")
      ->option_text("H");
  app->add_flag("--deep", args->deep, "Fetch and verify every shard, not only that it is there");
  app->add_flag("--repair", args->repair,
                "Rebuild what is missing or bad on other stores, and wait until done");
  app->add_flag("--json", args->json, "Print the report as one line of JSON");
  AddKeyFlags(app, &args->key, "an unmounted volume");
  return {app, [args] { return RunCheck(*args); }};
}

}  // namespace quid
