// quid mount: serves the home's volume at a mount point, as a daemon (default) or attached.
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cmd/commands.h"
#include "cmd/control_socket.h"
#include "cmd/daemonize.h"
#include "cmd/duration_parse.h"
#include "cmd/home.h"
#include "cmd/key_flags.h"
#include "cmd/logging.h"
#include "cmd/mount_daemon.h"
#include "fs/mount_table.h"
#include "cmd/network_stores.h"
#include "cmd/repair_flags.h"
#include "cmd/size_parse.h"

namespace quid {
namespace {

constexpr const char* kName = "mount";
constexpr const char* kLogName = "mount.log";
// How long to wait for a daemon that may already serve this home to say so.
constexpr int kProbeTimeoutMs = 2000;

struct MountArgs {
  std::string home;
  std::string mountpoint;
  bool foreground = false;
  std::string cache_size;
  std::string journal_size;
  std::string journal_wait;
  RepairFlags repair;
  std::vector<std::string> fuse_options;
  KeyFlags key;
};

// --foreground: the report goes straight to the person at the terminal.
class ForegroundReport : public StartupReport {
 public:
  explicit ForegroundReport(std::string mountpoint) : mountpoint_(std::move(mountpoint)) {}
  void Warn(const std::string& message) override { spdlog::warn("{}", message); }
  void Mounted() override { spdlog::info("Ctrl-C or `quid umount {}` unmounts", mountpoint_); }
  void Failed(const std::string& message) override { failure_ = message; }
  const std::string& failure() const { return failure_; }

 private:
  std::string mountpoint_;
  std::string failure_;
};

// "-o a,b -o c" -> {a, b, c}, as mount(8) reads them.
std::vector<std::string> SplitFuseOptions(const std::vector<std::string>& groups) {
  std::vector<std::string> options;
  for (const std::string& group : groups) {
    std::istringstream in(group);
    std::string option;
    while (std::getline(in, option, ',')) {
      if (!option.empty()) options.push_back(option);
    }
  }
  return options;
}

Status ParseSizeOption(const std::string& text, const char* flag, uint64_t& out) {
  if (text.empty()) return Status::Ok();
  Result<uint64_t> size = ParseSize(text);
  if (!size.ok()) return Status::Invalid(std::string(flag) + ": " + size.status().message());
  out = *size;
  return Status::Ok();
}

// Everything that can be checked before forking is, so that mistakes are reported here and
// not in a log file.
Result<MountDaemonOptions> Prepare(const MountArgs& args) {
  MountDaemonOptions options;
  Result<std::string> home = ResolveHome(args.home);
  if (!home.ok()) return home.status();
  options.volume.home = *home;
  options.volume.store_factory = MakeNetworkStoreFactory(options.volume.home);
  options.volume.lease_hosts = FollowLeaseHosts(*home);
  if (!std::filesystem::is_directory(options.volume.home)) {
    return Status::NotFound("no volume in " + options.volume.home + " (run quid init first)");
  }

  std::error_code ec;
  const std::filesystem::path mountpoint = std::filesystem::canonical(args.mountpoint, ec);
  if (ec) return Status::NotFound(args.mountpoint + ": " + ec.message());
  options.mount.mountpoint = mountpoint.string();
  // Checked before the folder itself: a mount whose daemon died fails every stat().
  Result<bool> mounted = IsMountPoint(options.mount.mountpoint);
  if (mounted.ok() && *mounted) {
    return Status(Code::kBusy, options.mount.mountpoint +
                                   " is already a mount point (quid umount it first if its "
                                   "daemon is gone)");
  }
  if (!std::filesystem::is_directory(mountpoint, ec)) {
    return Status(Code::kNotDir, args.mountpoint + " is not a folder");
  }
  Result<std::string> running =
      ControlRequest(ControlSocketPath(options.volume.home), "status", kProbeTimeoutMs);
  if (running.ok()) {
    return Status(Code::kBusy, "the volume in " + options.volume.home + " is already mounted");
  }

  QUID_RETURN_IF_ERROR(
      ParseSizeOption(args.cache_size, "--cache-size", options.volume.cache_bytes));
  QUID_RETURN_IF_ERROR(
      ParseSizeOption(args.journal_size, "--journal-size", options.volume.journal_bytes));
  if (!args.journal_wait.empty()) {
    Result<int64_t> wait = ParseDuration(args.journal_wait);
    if (!wait.ok()) return Status::Invalid("--journal-wait: " + wait.status().message());
    options.volume.journal_wait_ns = *wait;
  }
  QUID_RETURN_IF_ERROR(ApplyRepairFlags(args.repair, &options.volume.repair));
  options.mount.fuse_options = SplitFuseOptions(args.fuse_options);

  QUID_RETURN_IF_ERROR(ResolveKey(args.key, &options.volume.key_file, &options.volume.passphrase));
  return options;
}

int RunForeground(MountDaemonOptions options) {
  UseForegroundLogging();
  ForegroundReport report(options.mount.mountpoint);
  const int code = RunMountDaemon(std::move(options), report);
  if (!report.failure().empty()) return Fail(kName, report.failure());
  return code;
}

int RunDaemon(MountDaemonOptions options) {
  const std::string log_path = options.volume.home + "/" + kLogName;
  // Opened here, so that a log that cannot be written is reported at the terminal.
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) return Fail(kName, Status::FromErrno(errno, log_path).message());
  Result<DaemonFork> forked = ForkDaemon(log_fd, log_path);
  if (!forked.ok()) {
    ::close(log_fd);
    return Fail(kName, forked.status().message());
  }
  if (!forked->is_child) {
    ::close(log_fd);
    for (const std::string& warning : forked->warnings)
      fmt::print(stderr, "quid mount: warning: {}\n", warning);
    fmt::print("mounted {} at {} (log: {})\n", options.volume.home, options.mount.mountpoint,
               log_path);
    return 0;
  }
  const Status logging = UseDaemonLogging(log_path);
  if (!logging.ok()) {
    forked->report->Failed(logging.message());
    return 1;
  }
  return RunMountDaemon(std::move(options), *forked->report);
}

int RunMount(const MountArgs& args) {
  Result<MountDaemonOptions> options = Prepare(args);
  if (!options.ok()) return Fail(kName, options.status().message());
  return args.foreground ? RunForeground(std::move(options).value())
                         : RunDaemon(std::move(options).value());
}

}  // namespace

Command AddMountCommand(CLI::App& quid) {
  auto args = std::make_shared<MountArgs>();
  CLI::App* app = quid.add_subcommand(
      "mount", "Mount the volume; returns once it is mounted, and a daemon serves it");
  app->add_option("--home", args->home,
                  "Home folder (default: $QUID_HOME, else ~/.local/share/quid)")
      ->option_text("H");
  app->add_option("MOUNTPOINT", args->mountpoint, "Folder to mount the volume on")->required();
  app->add_flag("-f,--foreground", args->foreground,
                "Stay attached and log to stderr; Ctrl-C unmounts");
  app->add_option("--cache-size", args->cache_size,
                  "Read cache, e.g. 256M; 0 sends every read to the stores (default 96M)")
      ->option_text("SIZE");
  // --writeback-size: the flag's name before the journal had one of its own.
  app->add_option("--journal-size,--writeback-size", args->journal_size,
                  "Journal capacity: acknowledged writes not yet on the stores (default 1G)")
      ->option_text("SIZE");
  app->add_option("--journal-wait", args->journal_wait,
                  "How long a write waits for a full journal before ENOSPC, e.g. 30s (default "
                  "30s); nothing else ever waits for it")
      ->option_text("D");
  AddRepairFlags(app, &args->repair);
  app->add_option("-o", args->fuse_options,
                  "FUSE mount options as mount(8) takes them: allow_other, ro, ... (repeatable)")
      ->option_text("OPT[,OPT]...")
      ->allow_extra_args(false);
  AddKeyFlags(app, &args->key);
  return {app, [args] { return RunMount(*args); }};
}

}  // namespace quid
