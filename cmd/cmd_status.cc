// quid status: what the mount daemon reports about its volume, as a table or one JSON line.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "cmd/commands.h"
#include "cmd/control_socket.h"
#include "cmd/home.h"
#include "cmd/size_parse.h"
#include "cmd/status_json.h"

namespace quid {
namespace {

constexpr const char* kName = "status";
// The daemon answers status between other requests; a drain in progress can hold it that long.
constexpr int kStatusTimeoutMs = 10'000;

struct StatusArgs {
  std::string home;
  bool json = false;
};

void PrintStores(const std::vector<VolumeStatus::Store>& stores) {
  size_t name_width = std::string_view("STORE").size();
  for (const VolumeStatus::Store& s : stores) name_width = std::max(name_width, s.name.size());
  fmt::print("\n{:<{}}  {:<9}  {:>10}  {:>10}  {:>8}\n", "STORE", name_width, "REACHABLE", "USED",
             "CAPACITY", "SHARDS");
  for (const VolumeStatus::Store& s : stores) {
    fmt::print("{:<{}}  {:<9}  {:>10}  {:>10}  {:>8}\n", s.name, name_width,
               s.reachable ? "yes" : "NO", FormatSize(s.used_bytes),
               s.capacity_bytes == 0 ? std::string("-") : FormatSize(s.capacity_bytes),
               s.shard_count);
  }
  // Why each unreachable store is down (away, or another volume's), below the table.
  for (const VolumeStatus::Store& s : stores) {
    if (s.problem.empty()) continue;
    if (s.problem.starts_with(s.name)) {
      fmt::print("  {}\n", s.problem);  // the message names the store already
    } else {
      fmt::print("  {}: {}\n", s.name, s.problem);
    }
  }
}

void PrintTable(const DaemonStatus& status) {
  const VolumeStatus& v = status.volume;
  fmt::print("volume    {}\n", status.home);
  fmt::print("mounted   {}\n", status.mountpoint);
  fmt::print("coding    {}+{} ({} data + {} parity shards per chunk)\n", v.data_shards,
             v.parity_shards, v.data_shards, v.parity_shards);
  fmt::print("files     {}\n", v.files);
  fmt::print("chunks    {} ({} healthy, {} degraded)\n", v.chunks, v.chunks_healthy,
             v.chunks_degraded);
  fmt::print("stored    {} of file data in chunks\n", FormatSize(v.logical_bytes));
  fmt::print("pending   {} acknowledged, not yet on the stores{}\n", FormatSize(v.pending_bytes),
             v.pending_bytes == 0 ? "" : " (safe in the local journal)");
  fmt::print("journal   {} of {} used\n", FormatSize(v.journal_used_bytes),
             FormatSize(v.journal_capacity_bytes));
  if (v.journal_full || v.writers_waiting > 0) {
    size_t down = 0;
    for (const auto& store : v.stores) down += store.reachable ? 0 : 1;
    const std::string why =
        down > 0 ? fmt::format("{} of {} stores are unreachable", down, v.stores.size())
                 : std::string("the stores take data more slowly than it is written");
    if (v.journal_full) {
      fmt::print(
          "FULL      the journal is full and {}: writes fail with ENOSPC until the "
          "stores take some of it; nothing acknowledged is lost\n",
          why);
    } else {
      fmt::print("WAITING   {} writes wait for journal room ({})\n", v.writers_waiting, why);
    }
  }
  if (v.pending_deletes > 0) fmt::print("deleting  {} chunks\n", v.pending_deletes);
  if (v.degraded_reads > 0) {
    fmt::print("degraded  {} reads rebuilt from parity since mounting\n", v.degraded_reads);
  }
  if (v.swept_shards > 0) {
    fmt::print("swept     {} unreferenced shards removed by the last cleanup\n", v.swept_shards);
  }
  for (const std::string& damage : v.journal_damage) fmt::print("DAMAGED   {}\n", damage);
  PrintStores(v.stores);
}

int RunStatus(const StatusArgs& args) {
  Result<std::string> home = ResolveHome(args.home);
  if (!home.ok()) return Fail(kName, home.status().message());
  const std::string socket = ControlSocketPath(*home);
  Result<std::string> json = ControlRequest(socket, "status", kStatusTimeoutMs);
  if (!json.ok()) {
    if (json.status().code() == Code::kUnavailable) {
      return Fail(kName, "not mounted (no mount daemon answers on " + socket + ")");
    }
    return Fail(kName, json.status().message());
  }
  Result<DaemonStatus> status = StatusFromJson(*json);
  if (!status.ok()) return Fail(kName, status.status().message());
  if (args.json) {
    fmt::print("{}\n", *json);
  } else {
    PrintTable(*status);
  }
  return 0;
}

}  // namespace

Command AddStatusCommand(CLI::App& quid) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* app = quid.add_subcommand(
      "status", "Show the mounted volume: stores, erasure coding, chunks, bytes not yet stored");
  app->add_option("--home", args->home,
                  "Home folder (default: $QUID_HOME, else ~/.local/share/quid)")
      ->option_text("H");
  app->add_flag("--json", args->json, "Print one line of JSON instead of a table");
  return {app, [args] { return RunStatus(*args); }};
}

}  // namespace quid
