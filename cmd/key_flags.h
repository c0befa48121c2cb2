// How the commands that open a volume (`quid mount`, `quid check` of an unmounted one) are
// told its key: --key-file F, or --passphrase-file F, else $QUID_PASSPHRASE, else a prompt.
#pragma once

#include <string>

#include "storage/base/status.h"

namespace CLI {
class App;
}

namespace quid {

struct KeyFlags {
  std::string key_file;
  std::string passphrase_file;
};

// `when` says in the help when the flags apply, e.g. "for an unmounted volume" (empty:
// always).
void AddKeyFlags(CLI::App* app, KeyFlags* flags, const std::string& when = "");
// Sets exactly one of `key_file` (made absolute) and `passphrase` (read from where the flags
// say); the passphrase source's error otherwise.
Status ResolveKey(const KeyFlags& flags, std::string* key_file, std::string* passphrase);

}  // namespace quid
