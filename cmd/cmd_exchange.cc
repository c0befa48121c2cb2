// The exchange's commands, each a request to the node daemon of the home (cmd/node_socket.h):
//   quid invite --capacity SIZE [--expires D] [--ratio R]   prints the one-line code
//   quid join CODE [--ratio R]                              pairs with the code's node
//   quid trust FP --address HOST:PORT --capacity SIZE       pairs without a code (both sides)
//   quid peers [--json], quid leases [--json]
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <ctime>
#include <memory>
#include <string>

#include "cmd/commands.h"
#include "cmd/duration_parse.h"
#include "cmd/exchange_cli.h"
#include "cmd/home.h"
#include "cmd/node_socket.h"
#include "cmd/size_parse.h"

namespace quid {
namespace {

using nlohmann::json;

constexpr int kQuickMs = 20'000;
constexpr int kPairMs = 30'000;  // the daemon waits up to 10 s for the other node

std::string When(int64_t unix_seconds) {
  if (unix_seconds <= 0) return "never";
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof(out), "%Y-%m-%d %H:%M:%SZ", &tm);
  return out;
}

struct InviteArgs {
  std::string home, capacity, expires = "1d", ratio = "1";
};

int RunInvite(const InviteArgs& args) {
  constexpr const char* kName = "invite";
  Result<uint64_t> capacity = ParseSize(args.capacity);
  if (!capacity.ok() || *capacity == 0)
    return Fail(kName, "--capacity needs a size above 0, e.g. 10G");
  Result<int64_t> expires = ParseDuration(args.expires);
  constexpr int64_t kNsPerSecond = 1'000'000'000;
  if (!expires.ok() || *expires < kNsPerSecond)
    return Fail(kName, "--expires needs a duration of at least 1s, e.g. 1d");
  Result<uint32_t> ratio = ParseRatio(args.ratio);
  if (!ratio.ok()) return Fail(kName, ratio.status().message());
  Result<json> reply = Ask(args.home,
                           {{"op", "invite"},
                            {"capacity", *capacity},
                            {"valid_s", *expires / kNsPerSecond},
                            {"ratio", *ratio}},
                           kQuickMs);
  if (!reply.ok()) return Fail(kName, reply.status().message());
  fmt::print("{}\n", (*reply)["code"].get<std::string>());
  return 0;
}

int RunJoin(const std::string& home, const std::string& code, const std::string& ratio_text) {
  constexpr const char* kName = "join";
  json request = {{"op", "join"}, {"code", code}};
  if (!ratio_text.empty()) {
    Result<uint32_t> ratio = ParseRatio(ratio_text);
    if (!ratio.ok()) return Fail(kName, ratio.status().message());
    request["ratio"] = *ratio;
  }
  Result<json> reply = Ask(home, request, kPairMs);
  if (!reply.ok()) return Fail(kName, reply.status().message());
  fmt::print("joined {}: {} each way\n", (*reply)["peer"].get<std::string>(),
             FormatSize((*reply)["capacity_bytes"].get<uint64_t>()));
  return 0;
}

struct TrustArgs {
  std::string home, peer, address, capacity;
};

int RunTrust(const TrustArgs& args) {
  constexpr const char* kName = "trust";
  if (args.peer.size() != 32 ||
      args.peer.find_first_not_of("0123456789abcdef") != std::string::npos)
    return Fail(kName, args.peer + " is not a node fingerprint (32 hex characters, see quid id)");
  Result<uint64_t> capacity = ParseSize(args.capacity);
  if (!capacity.ok() || *capacity == 0)
    return Fail(kName, "--capacity needs a size above 0, e.g. 10G");
  Result<json> reply = Ask(
      args.home,
      {{"op", "trust"}, {"peer", args.peer}, {"address", args.address}, {"capacity", *capacity}},
      kPairMs);
  if (!reply.ok()) return Fail(kName, reply.status().message());
  if ((*reply)["state"] == "paired") {
    fmt::print("paired with {}: {} each way\n", args.peer, FormatSize(*capacity));
  } else {
    fmt::print("trusting {}: the pairing completes when it runs quid trust for this node\n",
               args.peer);
  }
  return 0;
}

int RunPeers(const std::string& home, bool as_json) {
  constexpr const char* kName = "peers";
  Result<json> reply = Ask(home, {{"op", "peers"}}, kQuickMs);
  if (!reply.ok()) return Fail(kName, reply.status().message());
  if (as_json) {
    fmt::print("{}\n", reply->dump());
    return 0;
  }
  fmt::print("{:<32}  {:<22}  {:<7}  {:>6}  {}\n", "PEER", "ADDRESS", "ONLINE", "UPTIME",
             "LAST SEEN");
  for (const json& p : (*reply)["peers"]) {
    const auto& addresses = p["addresses"];
    fmt::print("{:<32}  {:<22}  {:<7}  {:>5.0f}%  {}\n", p["peer"].get<std::string>(),
               addresses.empty() ? "-" : addresses[0].get<std::string>(),
               p["online"].get<bool>() ? "yes" : "no", 100 * p["uptime"].get<double>(),
               When(p["last_seen"].get<int64_t>()));
  }
  return 0;
}

int RunLeases(const std::string& home, bool as_json) {
  constexpr const char* kName = "leases";
  Result<json> reply = Ask(home, {{"op", "leases"}}, kQuickMs);
  if (!reply.ok()) return Fail(kName, reply.status().message());
  if (as_json) {
    fmt::print("{}\n", reply->dump());
    return 0;
  }
  fmt::print("{:<9}  {:<8}  {:<32}  {:>9}  {:>9}  {}\n", "DIRECTION", "STATE", "PEER", "CAPACITY",
             "USED", "ENDS");
  for (const json& l : (*reply)["leases"]) {
    fmt::print("{:<9}  {:<8}  {:<32}  {:>9}  {:>9}  {}\n", l["direction"].get<std::string>(),
               l["state"].get<std::string>(), l["peer"].get<std::string>(),
               FormatSize(l["capacity_bytes"].get<uint64_t>()),
               FormatSize(l["used_bytes"].get<uint64_t>()), When(l["expires_at"].get<int64_t>()));
  }
  return 0;
}

}  // namespace

Command AddInviteCommand(CLI::App& quid) {
  auto args = std::make_shared<InviteArgs>();
  CLI::App* app = quid.add_subcommand(
      "invite", "Print a one-time code another node joins with (reciprocal leases of SIZE)");
  app->add_option("--home", args->home, HomeFlagHelp())->option_text("H");
  app->add_option("--capacity", args->capacity, "Space each side gives the other, e.g. 10G")
      ->option_text("SIZE")
      ->required();
  app->add_option("--expires", args->expires, "How long the code works (default 1d)")
      ->option_text("D");
  app->add_option("--ratio", args->ratio, "What you give per byte you receive (default 1)")
      ->option_text("R");
  return {app, [args] { return RunInvite(*args); }};
}

Command AddJoinCommand(CLI::App& quid) {
  auto home = std::make_shared<std::string>();
  auto code = std::make_shared<std::string>();
  CLI::App* app = quid.add_subcommand("join", "Pair with the node whose invitation code this is");
  app->add_option("--home", *home, HomeFlagHelp())->option_text("H");
  app->add_option("code", *code, "The code quid invite printed")->required();
  auto ratio = std::make_shared<std::string>();
  app->add_option("--ratio", *ratio, "What you give per byte you receive (default 1)")
      ->option_text("R");
  return {app, [home, code, ratio] { return RunJoin(*home, *code, *ratio); }};
}

Command AddTrustCommand(CLI::App& quid) {
  auto args = std::make_shared<TrustArgs>();
  CLI::App* app = quid.add_subcommand(
      "trust", "Pair with a node by its fingerprint, without a code (run on both sides)");
  app->add_option("--home", args->home, HomeFlagHelp())->option_text("H");
  app->add_option("fingerprint", args->peer, "The other node's fingerprint (quid id)")->required();
  app->add_option("--address", args->address, "Where it listens")
      ->option_text("HOST:PORT")
      ->required();
  app->add_option("--capacity", args->capacity, "Space each side gives the other, e.g. 10G")
      ->option_text("SIZE")
      ->required();
  return {app, [args] { return RunTrust(*args); }};
}

Command AddPeersCommand(CLI::App& quid) {
  auto home = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  CLI::App* app = quid.add_subcommand("peers", "List this node's partners");
  app->add_option("--home", *home, HomeFlagHelp())->option_text("H");
  app->add_flag("--json", *as_json, "One line of JSON");
  return {app, [home, as_json] { return RunPeers(*home, *as_json); }};
}

Command AddLeasesCommand(CLI::App& quid) {
  auto home = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  CLI::App* app = quid.add_subcommand("leases", "List the leases this node gives and receives");
  app->add_option("--home", *home, HomeFlagHelp())->option_text("H");
  app->add_flag("--json", *as_json, "One line of JSON");
  return {app, [home, as_json] { return RunLeases(*home, *as_json); }};
}

}  // namespace quid
