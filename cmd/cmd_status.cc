// quid status: what the mount daemon reports about its volume, merged with what the node
// daemon of the same home says about the exchange (capacity given and received under leases
// in force), as a table or one JSON line; the node's fields alone when nothing is mounted.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cmd/commands.h"
#include "cmd/control_socket.h"
#include "cmd/home.h"
#include "cmd/node_socket.h"
#include "cmd/size_parse.h"
#include "cmd/status_json.h"

namespace quid {
namespace {

constexpr const char* kName = "status";
// The daemon answers status between other requests; a drain in progress can hold it that long.
constexpr int kStatusTimeoutMs = 10'000;
// The node daemon answers from its book; a join in progress may hold it a while.
constexpr int kNodeTimeoutMs = 5'000;

// What the node daemon says about the exchange; nothing when no node daemon answers.
struct NodeFields {
  uint64_t given_bytes = 0;
  uint64_t received_bytes = 0;
  size_t peers = 0;
  size_t leases_in_force = 0;
};

std::optional<NodeFields> AskNode(const std::string& home) {
  Result<nlohmann::json> leases = NodeRequest(home, {{"op", "leases"}}, kNodeTimeoutMs);
  if (!leases.ok()) return std::nullopt;
  NodeFields out;
  std::set<std::string> peers;
  for (const nlohmann::json& l : (*leases)["leases"]) {
    const std::string state = l.value("state", "");
    if (state != "active" && state != "renewed" && state != "expiring") continue;
    ++out.leases_in_force;
    peers.insert(l.value("peer", ""));
    (l.value("direction", "") == "given" ? out.given_bytes : out.received_bytes) +=
        l.value("capacity_bytes", uint64_t{0});
  }
  out.peers = peers.size();
  return out;
}

void AddNodeFields(nlohmann::json* out, const NodeFields& node) {
  (*out)["capacity_given_bytes"] = node.given_bytes;
  (*out)["capacity_received_bytes"] = node.received_bytes;
  (*out)["partners"] = node.peers;
}

void PrintNode(const NodeFields& node) {
  fmt::print("exchange  {} given, {} received under {} leases with {} partners\n",
             FormatSize(node.given_bytes), FormatSize(node.received_bytes), node.leases_in_force,
             node.peers);
}

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
    fmt::print("{:<{}}  {:<9}  {:>10}  {:>10}  {:>8}{}\n", s.name, name_width,
               s.reachable                   ? "yes"
               : s.state == HostState::kLost ? "LOST"
                                             : "NO",
               FormatSize(s.used_bytes),
               s.capacity_bytes == 0 ? std::string("-") : FormatSize(s.capacity_bytes),
               s.shard_count, s.draining ? "  lease ending: shards moving off" : "");
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

std::string FormatEta(int64_t s) {
  if (s < 0) return "?";
  if (s < 120) return fmt::format("{} s", s);
  if (s < 7200) return fmt::format("{} min", (s + 30) / 60);
  return fmt::format("{:.1f} h", static_cast<double>(s) / 3600);
}

void PrintRepair(const VolumeStatus& v) {
  const RepairProgress& r = v.repair;
  if (r.chunks_left > 0) {
    fmt::print("repair    {} chunks ({}) left, about {} at up to {}/s; {} rebuilt since mount\n",
               r.chunks_left, FormatSize(r.bytes_left), FormatEta(r.eta_s),
               FormatSize(r.rate_limit_bytes_per_s), r.chunks_done);
  } else if (r.chunks_done > 0) {
    fmt::print("repair    done: {} chunks rebuilt since mount ({} moved)\n", r.chunks_done,
               FormatSize(r.bytes_done));
  }
  if (r.shards_unplaced > 0)
    fmt::print(
        "NO ROOM   {} rebuilt shards found no store the chunk does not use yet: "
        "get more partners (quid invite)\n",
        r.shards_unplaced);
  if (r.bad_shards > 0)
    fmt::print(
        "bad       {} shards found missing, rotted or wrong on stores that answer; "
        "rebuilt elsewhere\n",
        r.bad_shards);
  size_t away = 0, lost = 0;
  for (const auto& s : v.stores) {
    away += s.state == HostState::kAway;
    lost += s.state == HostState::kLost;
  }
  if (away > 0)
    fmt::print("away      {} stores; their chunks are rebuilt if they stay away {} s\n", away,
               r.host_grace_s);
  if (lost > 0) fmt::print("lost      {} stores, away past the grace period\n", lost);
  for (const auto& s : v.stores)
    if (s.distrusted)
      fmt::print("DISTRUST  {}: failed {} of {} audits; its shards are rebuilt elsewhere\n", s.name,
                 s.audits_failed, s.audits_ok + s.audits_failed);
  if (r.audited_chunks > 0)
    fmt::print(
        "audits    {} chunks sampled ({} full passes), {} shards found bad; budget {}/h per "
        "host\n",
        r.audited_chunks, r.audit_cycles, r.audit_failures,
        FormatSize(r.audit_budget_bytes_per_host_hour));
}

void PrintTable(const DaemonStatus& status) {
  const VolumeStatus& v = status.volume;
  fmt::print("volume    {}\n", status.home);
  fmt::print("mounted   {}\n", status.mountpoint);
  fmt::print("coding    {}+{} ({} data + {} parity shards per chunk)\n", v.data_shards,
             v.parity_shards, v.data_shards, v.parity_shards);
  fmt::print("files     {}\n", v.files);
  fmt::print("chunks    {} ({} healthy, {} degraded{})\n", v.chunks, v.chunks_healthy,
             v.chunks_degraded, v.chunks_lost > 0 ? fmt::format(", {} LOST", v.chunks_lost) : "");
  PrintRepair(v);
  if (v.scheme_availability >= 0) {
    // DESIGN.md: at home uptimes a narrow scheme serves a chunk far less often than a wide
    // one of the same overhead; say so where it matters, with the widest such scheme.
    int f = 1;
    while (v.data_shards * (f + 1) <= 32 && v.parity_shards * (f + 1) <= 16 &&
           (v.data_shards + v.parity_shards) * (f + 1) <= 48)
      ++f;
    std::string warning;
    if (v.scheme_availability < 0.999)
      warning = f > 1 ? fmt::format(
                            " (WARNING: under 99.9 %; --data {} --parity {}, the same "
                            "overhead, serves more)",
                            v.data_shards * f, v.parity_shards * f)
                      : std::string(" (WARNING: under 99.9 %)");
    fmt::print("available {:.4f} % of the time at the stores' measured uptimes{}\n",
               100 * v.scheme_availability, warning);
  }
  if (v.placement_shortfall > 0)
    fmt::print(
        "DEGRADED  {} of the {} shards of a new chunk find no store of their own (too few "
        "stores take shards now): they double up until more do\n",
        v.placement_shortfall, v.data_shards + v.parity_shards);
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
  if (v.stuck_shards > 0)
    fmt::print(
        "NO ROOM   {} shards on leases that end have nowhere to go: no other lease has room. "
        "Nothing is deleted; get more leases (quid invite) before these end\n",
        v.stuck_shards);
  PrintStores(v.stores);
}

int RunStatus(const StatusArgs& args) {
  Result<std::string> home = ResolveHome(args.home);
  if (!home.ok()) return Fail(kName, home.status().message());
  const std::string socket = ControlSocketPath(*home);
  Result<std::string> json = ControlRequest(socket, "status", kStatusTimeoutMs);
  const std::optional<NodeFields> node = AskNode(*home);
  if (!json.ok()) {
    if (json.status().code() != Code::kUnavailable) return Fail(kName, json.status().message());
    if (!node)
      return Fail(kName, "not mounted (no mount daemon answers on " + socket +
                             ") and no node daemon runs for " + *home);
    // A node without a mounted volume: the exchange's fields alone.
    if (args.json) {
      nlohmann::json out = {{"home", *home}, {"mounted", false}};
      AddNodeFields(&out, *node);
      fmt::print("{}\n", out.dump());
    } else {
      fmt::print("node      {} (no volume mounted)\n", *home);
      PrintNode(*node);
    }
    return 0;
  }
  Result<DaemonStatus> status = StatusFromJson(*json);
  if (!status.ok()) return Fail(kName, status.status().message());
  if (args.json) {
    nlohmann::json out = nlohmann::json::parse(*json, nullptr, false);
    if (out.is_object() && node) AddNodeFields(&out, *node);
    fmt::print("{}\n", out.is_object() ? out.dump() : *json);
  } else {
    PrintTable(*status);
    if (node) PrintNode(*node);
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
