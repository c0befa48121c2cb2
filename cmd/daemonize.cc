#include "cmd/daemonize.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>

namespace quid {
namespace {

// The child tells the parent in lines, each led by its kind: any number of warnings, then
// kMounted, or kFailed followed by the message (to the end of the stream).
constexpr char kWarning = 'W';
constexpr char kMounted = 'M';
constexpr char kFailed = 'E';

class PipeReport : public StartupReport {
 public:
  explicit PipeReport(int fd) : fd_(fd) {}
  ~PipeReport() override { Close(); }

  void Warn(const std::string& message) override {
    spdlog::warn("{}", message);
    std::string line = message;
    std::replace(line.begin(), line.end(), '\n', ' ');
    Write(kWarning + line + "\n");
  }
  void Mounted() override { Tell(std::string(1, kMounted) + "\n"); }
  void Failed(const std::string& message) override {
    // The parent prints it at the terminal; the log keeps it for later.
    spdlog::error("cannot mount: {}", message);
    Tell(kFailed + message);
  }

 private:
  void Tell(const std::string& text) {
    Write(text);
    Close();
  }
  void Write(const std::string& text) {
    if (fd_ < 0) return;
    std::string_view rest = text;
    while (!rest.empty()) {
      const ssize_t n = ::write(fd_, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // the parent is gone; nobody is left to tell
      rest.remove_prefix(static_cast<size_t>(n));
    }
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  int fd_;
};

void BecomeDaemon(int log_fd) {
  ::setsid();
  // The daemon must not keep the folder it was started in busy (it could not be unmounted).
  if (::chdir("/") != 0) return;
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd >= 0) {
    ::dup2(null_fd, STDIN_FILENO);
    ::close(null_fd);
  }
  ::dup2(log_fd, STDOUT_FILENO);
  ::dup2(log_fd, STDERR_FILENO);
}

// Reads the child's report: warnings into `warnings`; returns the final line (kMounted, or
// kFailed and its message, or empty if the child died first).
std::string ReadReport(int fd, std::vector<std::string>* warnings) {
  std::string text;
  char buffer[512];
  while (true) {
    // Complete lines first: warnings, and kMounted (the daemon keeps its end of the pipe
    // open, so do not wait for end of file after it).
    size_t eol;
    while (!text.empty() && text[0] != kFailed && (eol = text.find('\n')) != std::string::npos) {
      if (text[0] == kMounted) return text.substr(0, eol);
      if (text[0] == kWarning) warnings->push_back(text.substr(1, eol - 1));
      text.erase(0, eol + 1);
    }
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return text;
    text.append(buffer, static_cast<size_t>(n));
  }
}

std::string DescribeExit(int wait_status) {
  if (WIFEXITED(wait_status)) return fmt::format("exit status {}", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return fmt::format("signal {}", WTERMSIG(wait_status));
  return "unknown status";
}

}  // namespace

Result<DaemonFork> ForkDaemon(int log_fd, const std::string& log_path) {
  int fds[2];
  // O_CLOEXEC: helpers the daemon execs (fusermount3) must not hold the parent waiting.
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe");
  const pid_t pid = ::fork();
  if (pid < 0) {
    Status status = Status::FromErrno(errno, "fork");
    ::close(fds[0]);
    ::close(fds[1]);
    return status;
  }
  if (pid == 0) {
    ::close(fds[0]);
    BecomeDaemon(log_fd);
    ::close(log_fd);
    DaemonFork child;
    child.is_child = true;
    child.report = std::make_unique<PipeReport>(fds[1]);
    return child;
  }

  ::close(fds[1]);
  std::vector<std::string> warnings;
  const std::string said = ReadReport(fds[0], &warnings);
  ::close(fds[0]);
  if (!said.empty() && said[0] == kMounted) {
    DaemonFork parent;
    parent.warnings = std::move(warnings);
    return parent;
  }
  // It failed and exits (or already has): reap it so no zombie outlives this command.
  int wait_status = 0;
  while (::waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  if (!said.empty() && said[0] == kFailed) return Status::IoError(said.substr(1));
  return Status::IoError(fmt::format("the mount daemon stopped before mounting ({}); see {}",
                                     DescribeExit(wait_status), log_path));
}

}  // namespace quid
