#include "cmd/control_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace quid {
namespace {

// A node request carries an invitation code, or a mount's count of what it placed on each
// host (about 200 bytes a host, for up to kMaxStores hosts).
constexpr size_t kMaxRequestBytes = 1 << 20;
// A client that connects and says nothing must not hold the one server thread.
constexpr int kRequestTimeoutSeconds = 5;
// After an unexpected accept() failure (say, out of descriptors), wait before trying again
// rather than spin.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);
constexpr int kListenBacklog = 8;

Result<sockaddr_un> SocketAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    return Status::Invalid(
        fmt::format("control socket path {} is longer than {} bytes; use a "
                    "shorter --home",
                    path, sizeof(address.sun_path) - 1));
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

// Writes all of `text`. A client that went away is no error for the daemon: MSG_NOSIGNAL
// keeps that from becoming a SIGPIPE that would kill it.
bool SendAll(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    text.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// The request line of a connection, or "" if it sent none in time.
std::string ReadRequest(int fd) {
  // A client sends one line and waits for the answer, so reading past the newline takes
  // nothing that belongs to a later request.
  std::string line;
  char chunk[4096];
  while (line.size() < kMaxRequestBytes) {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    const char* end = static_cast<const char*>(std::memchr(chunk, '\n', static_cast<size_t>(n)));
    line.append(chunk, end != nullptr ? static_cast<size_t>(end - chunk) : static_cast<size_t>(n));
    if (end != nullptr) break;
  }
  if (line.size() > kMaxRequestBytes) line.resize(kMaxRequestBytes);
  return line;
}

}  // namespace

std::string ControlSocketPath(const std::string& home) {
  return home + "/" + kControlSocketName;
}

// --- server ---

Result<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& path,
                                                            ControlHandlers handlers) {
  Result<sockaddr_un> address = SocketAddress(path);
  if (!address.ok()) return address.status();

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (ControlConnection::Connect(path).ok()) {
      return Status(Code::kBusy, "a mount daemon already answers on " + path);
    }
    // Nobody listens: a daemon died without cleaning up. Its socket file blocks bind().
    if (::unlink(path.c_str()) != 0) return Status::FromErrno(errno, "cannot remove " + path);
  }

  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  // On Linux bind() gives the socket file the mode of the unbound socket (less the umask):
  // setting 0600 first leaves no moment in which another user could connect. The chmod after
  // bind covers kernels that ignore it.
  ::fchmod(fd, 0600);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&*address), sizeof(sockaddr_un)) != 0) {
    Status status = Status::FromErrno(errno, "cannot listen on " + path);
    ::close(fd);
    return status;
  }
  if (::chmod(path.c_str(), 0600) != 0 || ::listen(fd, kListenBacklog) != 0) {
    Status status = Status::FromErrno(errno, "cannot listen on " + path);
    ::close(fd);
    ::unlink(path.c_str());
    return status;
  }
  return std::unique_ptr<ControlServer>(new ControlServer(path, fd, std::move(handlers)));
}

ControlServer::ControlServer(std::string path, int listen_fd, ControlHandlers handlers)
    : path_(std::move(path)), listen_fd_(listen_fd), handlers_(std::move(handlers)) {
  thread_ = std::thread([this] { AcceptLoop(); });
}

ControlServer::~ControlServer() {
  Stop();
  ::unlink(path_.c_str());
}

void ControlServer::Stop() {
  if (stopping_.exchange(true)) return;
  // shutdown() wakes a thread blocked in accept() on this socket (it returns EINVAL).
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(workers_mu_);
    workers.swap(workers_);
  }
  for (std::thread& w : workers) w.join();
  ::close(listen_fd_);
}

void ControlServer::AcceptLoop() {
  while (!stopping_.load()) {
    const int connection = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) {
      if (stopping_.load()) return;
      if (errno != EINTR && errno != ECONNABORTED) {
        spdlog::warn("control socket: accept failed: {}", std::strerror(errno));
        std::this_thread::sleep_for(kAcceptRetryDelay);
      }
      continue;
    }
    if (!Serve(connection)) ::close(connection);
  }
}

bool ControlServer::Serve(int connection) {
  const timeval timeout{kRequestTimeoutSeconds, 0};
  ::setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  const std::string request = ReadRequest(connection);
  if (handlers_.long_request && (request == "check" || request.starts_with("check "))) {
    std::lock_guard lock(workers_mu_);
    workers_.emplace_back([this, connection, request] {
      handlers_.long_request(
          request,
          [connection](const std::string& line) { return SendAll(connection, line + "\n"); },
          [this] { return stopping_.load(); });
      ::close(connection);
    });
    return true;
  }
  if (handlers_.command) {
    std::string reply = handlers_.command(request);
    reply.erase(std::remove(reply.begin(), reply.end(), '\n'), reply.end());
    SendAll(connection, reply + "\n");
  } else if (request == "status") {
    SendAll(connection, handlers_.status_json() + "\n");
  } else if (request == "drain") {
    const uint64_t left = handlers_.drain([connection](uint64_t pending) {
      SendAll(connection, fmt::format("pending {}\n", pending));
    });
    SendAll(connection, left == 0 ? std::string("done\n") : fmt::format("left {}\n", left));
  } else if (request == "unmount" || request == "unmount force") {
    handlers_.unmount(request == "unmount force");
    SendAll(connection, "ok\n");
  } else {
    SendAll(connection, fmt::format("error unknown request \"{}\"\n", request));
  }
  return false;
}

// --- client ---

Result<ControlConnection> ControlConnection::Connect(const std::string& path) {
  Result<sockaddr_un> address = SocketAddress(path);
  if (!address.ok()) return address.status();
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&*address), sizeof(sockaddr_un)) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EACCES || err == EPERM) {
      return Status(Code::kPermission, path + " belongs to another user");
    }
    return Status::Unavailable("no mount daemon answers on " + path);
  }
  return ControlConnection(fd);
}

ControlConnection::~ControlConnection() {
  if (fd_ >= 0) ::close(fd_);
}

ControlConnection::ControlConnection(ControlConnection&& other) noexcept
    : fd_(other.fd_), buffer_(std::move(other.buffer_)) {
  other.fd_ = -1;
}

Status ControlConnection::Send(std::string_view request) {
  if (!SendAll(fd_, std::string(request) + "\n")) {
    return Status::Unavailable("the mount daemon closed the control connection");
  }
  return Status::Ok();
}

Result<std::string> ControlConnection::ReadLine(int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    const size_t newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      return line;
    }
    int wait_ms = -1;
    if (timeout_ms >= 0) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      wait_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, wait_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) return Status::Unavailable("the mount daemon did not answer in time");
    if (ready < 0) return Status::FromErrno(errno, "control socket");
    char chunk[512];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Unavailable("the mount daemon closed the control connection");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

Result<std::string> ControlRequest(const std::string& path, std::string_view request,
                                   int timeout_ms) {
  Result<ControlConnection> connection = ControlConnection::Connect(path);
  if (!connection.ok()) return connection.status();
  QUID_RETURN_IF_ERROR(connection->Send(request));
  return connection->ReadLine(timeout_ms);
}

}  // namespace quid
