#include "cmd/passphrase.h"

#include <termios.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace quid {
namespace {

constexpr const char* kPassphraseEnv = "QUID_PASSPHRASE";
// Longer input is surely not a passphrase typed by hand; stop reading rather than grow.
constexpr size_t kMaxPassphraseBytes = 4096;

Result<std::string> FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read passphrase file " + path);
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return Status::Invalid("passphrase file " + path + " is empty");
  return line;
}

// While echo is off, a Ctrl-C must not leave the terminal mute: the handler puts the saved
// settings back (tcsetattr is async-signal-safe) and lets the signal do what it would have.
volatile sig_atomic_t g_prompt_fd = -1;
termios g_saved_termios;

void RestoreTerminalAndReraise(int signo) {
  if (g_prompt_fd >= 0) ::tcsetattr(g_prompt_fd, TCSAFLUSH, &g_saved_termios);
  std::signal(signo, SIG_DFL);
  std::raise(signo);
}

Result<std::string> Prompt(int fd, const char* question) {
  if (::tcgetattr(fd, &g_saved_termios) != 0) return Status::FromErrno(errno, "terminal");
  termios silent = g_saved_termios;
  silent.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  silent.c_lflag |= ECHONL;  // the Enter key still moves to the next line
  g_prompt_fd = fd;
  auto old_int = std::signal(SIGINT, RestoreTerminalAndReraise);
  auto old_term = std::signal(SIGTERM, RestoreTerminalAndReraise);
  ::tcsetattr(fd, TCSAFLUSH, &silent);

  std::fputs(question, stderr);
  std::fflush(stderr);
  std::string line;
  char c = 0;
  ssize_t n = 0;
  while ((n = ::read(fd, &c, 1)) == 1 && c != '\n' && line.size() < kMaxPassphraseBytes) {
    line.push_back(c);
  }
  const int read_errno = errno;

  ::tcsetattr(fd, TCSAFLUSH, &g_saved_termios);
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  g_prompt_fd = -1;
  if (n < 0) return Status::FromErrno(read_errno, "reading the passphrase");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

Result<std::string> FromTerminal(int fd, bool confirm) {
  Result<std::string> first = Prompt(fd, "Passphrase: ");
  if (!first.ok()) return first.status();
  if (first->empty()) return Status::Invalid("the passphrase is empty");
  if (confirm) {
    Result<std::string> second = Prompt(fd, "Passphrase again: ");
    if (!second.ok()) return second.status();
    if (*second != *first) return Status::Invalid("the passphrases do not match");
  }
  return first;
}

}  // namespace

Result<std::string> GetPassphrase(const PassphraseRequest& request) {
  if (!request.file.empty()) return FromFile(request.file);
  const char* env = std::getenv(kPassphraseEnv);
  if (env != nullptr) {
    if (env[0] == '\0') return Status::Invalid("QUID_PASSPHRASE is set but empty");
    return std::string(env);
  }
  if (::isatty(request.terminal_fd) != 1) {
    return Status::Invalid(
        "a passphrase is needed and there is no terminal to ask on: set QUID_PASSPHRASE or "
        "pass --passphrase-file F");
  }
  return FromTerminal(request.terminal_fd, request.confirm);
}

}  // namespace quid
