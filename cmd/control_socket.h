// The mount daemon's control socket: how `quid status`, `quid umount` and `quid mount` reach
// the one process that has the volume open (DESIGN.md: the mount daemon alone opens its
// RocksDB).
//
// A Unix stream socket named control.sock in the home folder, mode 0600, one request per
// connection, lines of text:
//   "status"         -> one line of JSON (see status_json.h)
//   "drain"          -> "pending N" now and then, then "done" or "left N" (bytes still pending)
//   "unmount"        -> "ok"; the daemon unmounts, stores what is pending (bounded) and exits
//   "unmount force"  -> "ok"; the same without storing first: pending bytes stay in the journal
//   "check [deep] [repair]" -> "progress PHASE DONE TOTAL" now and then, then "report JSON"
//                    (or "error <message>"); served on a thread of its own, so status
//                    requests are answered while a check runs
// Anything else    -> "error <message>".
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "storage/base/status.h"

namespace quid {

constexpr const char* kControlSocketName = "control.sock";
constexpr const char* kNodeSocketName = "node.sock";
std::string ControlSocketPath(const std::string& home);

// What the daemon does for each request. Called on the server's one thread, one at a time.
struct ControlHandlers {
  std::function<std::string()> status_json;
  // Stores what is pending, calling `progress` with the bytes left now and then. Returns the
  // bytes still pending at the end (0: everything stored).
  std::function<uint64_t(const std::function<void(uint64_t)>& progress)> drain;
  // Starts unmounting; with `force` the daemon skips its final drain.
  std::function<void(bool force)> unmount;
  // A long request ("check ..."): writes its reply lines through `send` (false: the client
  // went away), and returns early once `stopping` turns true (the daemon is unmounting).
  std::function<void(const std::string& request,
                     const std::function<bool(const std::string&)>& send,
                     const std::function<bool()>& stopping)>
      long_request;
  // The node daemon's socket (node.sock) instead: every request line goes here and the
  // returned line is the reply (the requests of cmd/node_socket.h). Set, the three above
  // are not used.
  std::function<std::string(const std::string& request)> command;
};

// One thread with a blocking accept loop: requests are rare and short, except a drain, during
// which other requests wait (clients bound their waits).
class ControlServer {
 public:
  // Listens at `path`. kBusy if a daemon already answers there; a socket file left behind by a
  // daemon that died is replaced.
  static Result<std::unique_ptr<ControlServer>> Start(const std::string& path,
                                                      ControlHandlers handlers);
  // Stop(), then removes the socket file: its absence tells clients the daemon is done.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Stops accepting and waits for the request in hand to finish. Idempotent.
  void Stop();

 private:
  ControlServer(std::string path, int listen_fd, ControlHandlers handlers);
  void AcceptLoop();
  // Serves one connection; true if it handed the connection to a worker (which closes it).
  bool Serve(int connection);

  const std::string path_;
  const int listen_fd_;
  const ControlHandlers handlers_;
  std::atomic<bool> stopping_{false};
  std::mutex workers_mu_;
  std::vector<std::thread> workers_;  // long requests in flight; joined by Stop
  std::thread thread_;
};

// The client side of one request.
class ControlConnection {
 public:
  // kUnavailable when nothing answers at `path` (not mounted, or a daemon that died);
  // kPermission when the socket belongs to another user.
  static Result<ControlConnection> Connect(const std::string& path);
  ~ControlConnection();
  ControlConnection(ControlConnection&& other) noexcept;
  ControlConnection& operator=(ControlConnection&&) = delete;
  ControlConnection(const ControlConnection&) = delete;
  ControlConnection& operator=(const ControlConnection&) = delete;

  // Sends `request` and its newline.
  Status Send(std::string_view request);
  // The next line, without its newline. kUnavailable when the daemon hangs up, or when no line
  // comes within `timeout_ms` (negative: wait as long as it takes).
  Result<std::string> ReadLine(int timeout_ms);

 private:
  explicit ControlConnection(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::string buffer_;
};

// One request that has a one-line reply ("status", "unmount").
Result<std::string> ControlRequest(const std::string& path, std::string_view request,
                                   int timeout_ms);

}  // namespace quid
