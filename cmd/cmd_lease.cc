// Changing what this node gives a peer, and the ledger of what each side gives and holds:
//   quid lease set PEER --capacity SIZE [--ratio R]   less goes by notice, more by an offer
//   quid lease revoke PEER                            a notice to nothing: expiring, then revoked
//   quid ledger [--json]
// PEER is a fingerprint or a unique prefix of one.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "cmd/commands.h"
#include "cmd/exchange_cli.h"
#include "cmd/size_parse.h"

namespace quid {
namespace {

using nlohmann::json;

constexpr int kQuickMs = 20'000;

struct LeaseArgs {
  std::string home, peer, capacity, ratio;
};

std::string NoticeSentence(const json& reply) {
  const uint64_t before = reply["before_bytes"].get<uint64_t>();
  const uint64_t after = reply["after_bytes"].get<uint64_t>();
  const int64_t notice_s = reply["notice_s"].get<int64_t>();
  if (after >= before) return "at once (the peer countersigns at the next heartbeat)";
  return fmt::format(
      "{} s after {} acknowledges the notice (at its next heartbeat); its data "
      "stays until then and for the grace period after",
      notice_s, reply["peer"].get<std::string>().substr(0, 8));
}

int RunLeaseChange(const LeaseArgs& args, bool revoke) {
  const char* name = revoke ? "lease revoke" : "lease set";
  json request = {{"op", revoke ? "lease_revoke" : "lease_set"}, {"peer", args.peer}};
  if (!revoke) {
    if (args.capacity.empty() && args.ratio.empty())
      return Fail(name, "say what to give: --capacity SIZE, --ratio R, or both");
    if (!args.capacity.empty()) {
      Result<uint64_t> capacity = ParseSize(args.capacity);
      if (!capacity.ok()) return Fail(name, "--capacity: " + capacity.status().message());
      request["capacity"] = *capacity;
    }
    if (!args.ratio.empty()) {
      Result<uint32_t> ratio = ParseRatio(args.ratio);
      if (!ratio.ok()) return Fail(name, ratio.status().message());
      request["ratio"] = *ratio;
    }
  }
  Result<json> reply = Ask(args.home, request, kQuickMs);
  if (!reply.ok()) return Fail(name, reply.status().message());
  fmt::print("{}: {} -> {}, {}\n", (*reply)["peer"].get<std::string>(),
             FormatSize((*reply)["before_bytes"].get<uint64_t>()),
             FormatSize((*reply)["after_bytes"].get<uint64_t>()), NoticeSentence(*reply));
  return 0;
}

int RunLedger(const std::string& home, bool as_json) {
  Result<json> reply = Ask(home, {{"op", "ledger"}}, kQuickMs);
  if (!reply.ok()) return Fail("ledger", reply.status().message());
  if (as_json) {
    fmt::print("{}\n", reply->dump());
    return 0;
  }
  fmt::print("{:<32}  {:>9}  {:>9}  {:>11}  {:>11}  {:>5}  {:>6}  {}\n", "PEER", "GIVEN",
             "RECEIVED", "HELD FOR IT", "HELD BY IT", "RATIO", "UPTIME", "STANDING");
  for (const json& p : (*reply)["peers"]) {
    std::string standing = p["standing"].get<std::string>();
    if (!p["why"].get<std::string>().empty()) standing += " (" + p["why"].get<std::string>() + ")";
    fmt::print("{:<32}  {:>9}  {:>9}  {:>11}  {:>11}  {:>5.2f}  {:>5.0f}%  {}\n",
               p["peer"].get<std::string>(), FormatSize(p["given_bytes"].get<uint64_t>()),
               FormatSize(p["received_bytes"].get<uint64_t>()),
               FormatSize(p["held_for_peer_bytes"].get<uint64_t>()),
               FormatSize(p["held_by_peer_bytes"].get<uint64_t>()), p["ratio"].get<double>(),
               100 * p["uptime"].get<double>(), standing);
  }
  return 0;
}

}  // namespace

Command AddLeaseCommand(CLI::App& quid) {
  auto args = std::make_shared<LeaseArgs>();
  auto revoke_args = std::make_shared<LeaseArgs>();
  auto home = std::make_shared<std::string>();  // before or after set/revoke
  CLI::App* app = quid.add_subcommand("lease", "Change what this node gives a peer");
  app->add_option("--home", *home, HomeFlagHelp())->option_text("H");
  app->require_subcommand(1);
  CLI::App* set = app->add_subcommand(
      "set", "Give PEER SIZE in all: less after the notice period, more at once");
  set->add_option("--home", args->home, HomeFlagHelp())->option_text("H");
  set->add_option("peer", args->peer, "The peer's fingerprint (or a unique prefix)")->required();
  set->add_option("--capacity", args->capacity, "What to give it, e.g. 10G (0 revokes)")
      ->option_text("SIZE");
  set->add_option("--ratio", args->ratio, "What you give per byte it gives you (default 1)")
      ->option_text("R");
  CLI::App* revoke = app->add_subcommand(
      "revoke", "Give PEER nothing after the notice period (its data moves off first)");
  revoke->add_option("--home", revoke_args->home, HomeFlagHelp())->option_text("H");
  revoke->add_option("peer", revoke_args->peer, "The peer's fingerprint (or a unique prefix)")
      ->required();
  return {app, [home, args, revoke_args, set, revoke] {
            for (LeaseArgs* a : {args.get(), revoke_args.get()})
              if (a->home.empty()) a->home = *home;
            if (set->parsed()) return RunLeaseChange(*args, false);
            if (revoke->parsed()) return RunLeaseChange(*revoke_args, true);
            return 2;
          }};
}

Command AddLedgerCommand(CLI::App& quid) {
  auto home = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  CLI::App* app = quid.add_subcommand(
      "ledger", "What this node and each peer give and hold for each other, and standing");
  app->add_option("--home", *home, HomeFlagHelp())->option_text("H");
  app->add_flag("--json", *as_json, "One line of JSON");
  return {app, [home, as_json] { return RunLedger(*home, *as_json); }};
}

}  // namespace quid
