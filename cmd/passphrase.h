// Where a volume's passphrase comes from: a file, the environment, or the person at the
// terminal. CI and scripts have no terminal (TRAPS.md), so nothing here may hang on a prompt.
#pragma once

#include <unistd.h>

#include <string>

#include "storage/base/status.h"

namespace quid {

struct PassphraseRequest {
  std::string file;                // --passphrase-file: its first line is the passphrase
  bool confirm = false;            // a new passphrase: a prompt asks twice and compares
  int terminal_fd = STDIN_FILENO;  // where a prompt reads from (a test seam)
};

// The first source that is set wins: --passphrase-file (an explicit flag beats the
// environment, as --home beats QUID_HOME), QUID_PASSPHRASE, then a prompt without echo when
// `terminal_fd` is a terminal. Without any of them, kInvalid saying how to give one; an empty
// passphrase is refused too, since it would protect nothing.
Result<std::string> GetPassphrase(const PassphraseRequest& request);

}  // namespace quid
