// quid: the one binary. Parses the command line and runs the subcommand it names.
#include <fmt/format.h>
#include <malloc.h>
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "cmd/commands.h"
#include "cmd/logging.h"

namespace {

// CLI11 prints a usage error over two lines; every quid error is one line, named after the
// command that failed.
int ReportUsageError(const CLI::App& quid, const CLI::ParseError& error, int argc, char** argv) {
  std::string command;
  std::string help = "quid --help";
  std::string message = error.what();
  const std::vector<CLI::App*> parsed = quid.get_subcommands();
  if (!parsed.empty()) {
    command = " " + parsed.back()->get_name();
    help = "quid" + command + " --help";
  } else if (argc > 1 && argv[1][0] != '-') {
    // CLI11 would only say that a subcommand is required.
    message = fmt::format("unknown command \"{}\"", argv[1]);
  }
  fmt::print(stderr, "quid{}: {} (see {})\n", command, message, help);
  // 2, as for usage errors elsewhere (grep, mount), sets them apart from failures.
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Two malloc arenas, not glibc's eight per core: the daemons pass chunk-sized buffers
  // (4 MiB) between a dozen threads, and each thread's arena kept the ones freed in it, so
  // a cold 4 GiB read through quid demo peaked at 344 MiB with a 128 MiB cache; 253 MiB
  // with two arenas, at the same speed (docs/benchmarks.md).
  mallopt(M_ARENA_MAX, 2);
  quid::UseCommandLogging();
  CLI::App app("quid: an encrypted, erasure-coded volume over shard stores, mounted as a drive",
               "quid");
  app.set_version_flag("--version", std::string("quid ") + QUID_VERSION);
  app.require_subcommand(1);
  const std::vector<quid::Command> commands = {
      quid::AddInitCommand(app),   quid::AddMountCommand(app),  quid::AddUmountCommand(app),
      quid::AddStatusCommand(app), quid::AddServeCommand(app),  quid::AddDemoCommand(app),
      quid::AddIdCommand(app),     quid::AddInviteCommand(app), quid::AddJoinCommand(app),
      quid::AddTrustCommand(app),  quid::AddPeersCommand(app),  quid::AddLeasesCommand(app),
      quid::AddLeaseCommand(app),  quid::AddLedgerCommand(app), quid::AddCheckCommand(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version arrive as "errors" with exit code 0.
    if (error.get_exit_code() == 0) return app.exit(error);
    return ReportUsageError(app, error, argc, argv);
  }
  for (const quid::Command& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  return 0;
}
