// quid umount: stores what is pending (with progress), then unmounts and waits for the
// daemon to close the volume. --force unmounts at once and says what is left, and where.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "cmd/commands.h"
#include "cmd/control_socket.h"
#include "cmd/home.h"
#include "cmd/mount_record.h"
#include "fs/mount_table.h"
#include "cmd/size_parse.h"
#include "cmd/status_json.h"

extern char** environ;

namespace quid {
namespace {

constexpr const char* kName = "umount";
constexpr int kStatusTimeoutMs = 10'000;
// After the unmount request the daemon closes the volume (its drain already ran); closing
// RocksDB and the stores takes seconds, not minutes.
constexpr auto kCloseTimeout = std::chrono::seconds(120);
constexpr auto kPollInterval = std::chrono::milliseconds(100);
// Progress lines while storing, at most this often.
constexpr auto kProgressInterval = std::chrono::seconds(1);

struct UmountArgs {
  bool force = false;
  std::string mountpoint;
};

// For a mount no daemon of ours answers for (none recorded, or it died): the kernel's side.
int FallBackToFusermount(const std::string& mountpoint, const std::string& why) {
  fmt::print("{}; unmounting with fusermount3 -u\n", why);
  const char* argv[] = {"fusermount3", "-u", mountpoint.c_str(), nullptr};
  pid_t pid = 0;
  if (::posix_spawnp(&pid, "fusermount3", nullptr, nullptr, const_cast<char* const*>(argv),
                     environ) != 0) {
    return Fail(kName, "cannot run fusermount3");
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Fail(kName, "fusermount3 -u " + mountpoint + " failed");
  }
  return 0;
}

// "pending 123" -> 123, for the given `word` ("pending ") only.
bool ParseCount(std::string_view line, std::string_view word, uint64_t& count) {
  if (!line.starts_with(word)) return false;
  line.remove_prefix(word.size());
  const auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), count);
  return error == std::errc() && end == line.data() + line.size();
}

// No daemon of ours answers for `mountpoint` (`why`): unmount what the kernel still has.
int WithoutDaemon(const std::string& mountpoint, const std::string& why) {
  Result<bool> mounted = IsMountPoint(mountpoint);
  if (mounted.ok() && !*mounted) return Fail(kName, mountpoint + " is not mounted");
  return FallBackToFusermount(mountpoint, why);
}

// Asks the daemon to store everything pending, printing progress. Returns the bytes it could
// not store (0: all stored).
Result<uint64_t> Drain(const std::string& socket) {
  Result<ControlConnection> connection = ControlConnection::Connect(socket);
  if (!connection.ok()) return connection.status();
  QUID_RETURN_IF_ERROR(connection->Send("drain"));
  auto last_print = std::chrono::steady_clock::time_point{};
  while (true) {
    // The daemon bounds the drain itself and reports as it goes; no client timeout here.
    Result<std::string> line = connection->ReadLine(-1);
    if (!line.ok()) return line.status();
    uint64_t bytes = 0;
    if (*line == "done") return uint64_t{0};
    if (ParseCount(*line, "left ", bytes)) return bytes;
    if (ParseCount(*line, "pending ", bytes)) {
      const auto now = std::chrono::steady_clock::now();
      if (bytes > 0 && now - last_print >= kProgressInterval) {
        last_print = now;
        fmt::print("{} bytes left to store ({})\n", bytes, FormatSize(bytes));
        std::fflush(stdout);
      }
      continue;
    }
    return Status::Corrupt("unexpected reply from the mount daemon: " + *line);
  }
}

// Until the mount point is gone and the daemon has removed its socket (its last act).
bool WaitForDaemonExit(const std::string& mountpoint, const std::string& socket) {
  const auto deadline = std::chrono::steady_clock::now() + kCloseTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    Result<bool> mounted = IsMountPoint(mountpoint);
    if (mounted.ok() && !*mounted && !std::filesystem::exists(socket)) return true;
    std::this_thread::sleep_for(kPollInterval);
  }
  return false;
}

Result<uint64_t> PendingBytes(const std::string& socket) {
  Result<std::string> json = ControlRequest(socket, "status", kStatusTimeoutMs);
  if (!json.ok()) return json.status();
  Result<DaemonStatus> status = StatusFromJson(*json);
  if (!status.ok()) return status.status();
  return status->volume.pending_bytes;
}

int RunUmount(const UmountArgs& args) {
  // canonical() would fail on a mount whose daemon died ("transport endpoint is not
  // connected"), which is exactly a mount one wants to get rid of.
  std::error_code ec;
  std::string mountpoint = std::filesystem::canonical(args.mountpoint, ec).string();
  if (ec) mountpoint = AbsolutePath(args.mountpoint);

  Result<std::string> home = ReadMountRecord(mountpoint);
  if (!home.ok()) return WithoutDaemon(mountpoint, "no quid mount is recorded at " + mountpoint);
  const std::string socket = ControlSocketPath(*home);
  // Connect and hang up at once: a connection left open would hold the daemon's one control
  // thread until its request timeout.
  const Status reachable = ControlConnection::Connect(socket).status();
  if (!reachable.ok()) {
    if (reachable.code() == Code::kPermission) return Fail(kName, reachable.message());
    RemoveMountRecord(mountpoint, *home);
    return WithoutDaemon(mountpoint, "the mount daemon of " + *home + " is not running");
  }

  const std::string journal = *home + "/journal";
  std::string request = "unmount";
  if (args.force) {
    Result<uint64_t> pending = PendingBytes(socket);
    if (!pending.ok()) return Fail(kName, pending.status().message());
    request = "unmount force";
    if (*pending > 0) {
      fmt::print("forced: {} ({} bytes) not yet stored stays in {}; the next mount stores it\n",
                 FormatSize(*pending), *pending, journal);
    } else {
      fmt::print("forced: nothing was pending; all data is stored\n");
    }
  } else {
    Result<uint64_t> left = Drain(socket);
    if (!left.ok()) return Fail(kName, left.status().message());
    if (*left == 0) {
      fmt::print("all data stored\n");
    } else {
      fmt::print(
          "{} ({} bytes) could not be stored in time (stores unreachable?); it stays in {} "
          "and the next mount stores it\n",
          FormatSize(*left), *left, journal);
      // The daemon would only try again for as long; the journal keeps the data safe.
      request = "unmount force";
    }
  }

  Result<std::string> reply = ControlRequest(socket, request, kStatusTimeoutMs);
  if (!reply.ok()) return Fail(kName, reply.status().message());
  if (*reply != "ok") return Fail(kName, "the mount daemon refused: " + *reply);
  if (!WaitForDaemonExit(mountpoint, socket)) {
    return Fail(kName, fmt::format("the mount daemon is still closing the volume after {} s; see "
                                   "{}/mount.log",
                                   kCloseTimeout.count(), *home));
  }
  fmt::print("unmounted {}\n", mountpoint);
  return 0;
}

}  // namespace

Command AddUmountCommand(CLI::App& quid) {
  auto args = std::make_shared<UmountArgs>();
  CLI::App* app = quid.add_subcommand(
      "umount", "Store what is pending (with progress), then unmount and close the volume");
  app->add_flag("--force", args->force,
                "Unmount now; data not yet stored stays in the journal for the next mount");
  app->add_option("MOUNTPOINT", args->mountpoint, "Where the volume is mounted")->required();
  return {app, [args] { return RunUmount(*args); }};
}

}  // namespace quid
