// The subcommands of `quid`. Each adds itself, with its options, to the top-level app and
// returns how to run it once the command line is parsed; main() runs the one that was given.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <functional>
#include <string_view>

namespace CLI {
class App;
}  // namespace CLI

namespace quid {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;  // returns the process's exit code
};

Command AddInitCommand(CLI::App& quid);
Command AddMountCommand(CLI::App& quid);
Command AddUmountCommand(CLI::App& quid);
Command AddStatusCommand(CLI::App& quid);
Command AddServeCommand(CLI::App& quid);
Command AddDemoCommand(CLI::App& quid);
Command AddIdCommand(CLI::App& quid);
Command AddInviteCommand(CLI::App& quid);
Command AddJoinCommand(CLI::App& quid);
Command AddTrustCommand(CLI::App& quid);
Command AddPeersCommand(CLI::App& quid);
Command AddLeasesCommand(CLI::App& quid);
Command AddLeaseCommand(CLI::App& quid);  // quid lease set | revoke
Command AddLedgerCommand(CLI::App& quid);
Command AddCheckCommand(CLI::App& quid);  // quid check [--deep] [--repair]

// Every command reports failure the same way, so scripts and people can rely on it: one line
// on stderr, "quid <command>: <message>", and exit code 1.
inline int Fail(std::string_view command, std::string_view message) {
  // What the command printed before comes first, so the reason is the last line of a log
  // that holds both streams (stdout is buffered when it is not a terminal).
  std::fflush(stdout);
  fmt::print(stderr, "quid {}: {}\n", command, message);
  return 1;
}

}  // namespace quid
