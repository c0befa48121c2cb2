// quid id: prints this node's fingerprint (creating its key on first use), the string a
// host's `quid serve --tenant` admits.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "cmd/commands.h"
#include "cmd/home.h"
#include "cmd/network_stores.h"
#include "storage/base/env.h"

namespace quid {
namespace {

constexpr const char* kName = "id";

int RunId(const std::string& home_flag) {
  Result<std::string> home = ResolveHome(home_flag);
  if (!home.ok()) return Fail(kName, home.status().message());
  const Status made = Env::Default()->CreateDirs(*home, 0700);
  if (!made.ok()) return Fail(kName, made.message());
  Result<net::NodeIdentity> identity = LoadNodeIdentity(*home);
  if (!identity.ok()) return Fail(kName, identity.status().message());
  fmt::print("{}\n", identity->fingerprint());
  return 0;
}

}  // namespace

Command AddIdCommand(CLI::App& quid) {
  auto home = std::make_shared<std::string>();
  CLI::App* app = quid.add_subcommand(
      "id", "Print this node's fingerprint (hosts admit it with quid serve --tenant)");
  app->add_option("--home", *home, "Home folder (default: $QUID_HOME, else ~/.local/share/quid)")
      ->option_text("H");
  return {app, [home] { return RunId(*home); }};
}

}  // namespace quid
