#include "cmd/key_flags.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cmd/home.h"
#include "cmd/passphrase.h"

namespace quid {

void AddKeyFlags(CLI::App* app, KeyFlags* flags, const std::string& when) {
  // fmt, not "(" + when: GCC 12 misreads that concatenation in Release (-Wrestrict).
  const std::string lead = when.empty() ? std::string() : fmt::format("({}) ", when);
  app->add_option("--key-file", flags->key_file, lead + "Unwrap the volume key with this key file")
      ->option_text("F");
  app->add_option("--passphrase-file", flags->passphrase_file,
                  lead +
                      "Read the passphrase from the first line of F (else $QUID_PASSPHRASE, else "
                      "a prompt)")
      ->option_text("F");
}

Status ResolveKey(const KeyFlags& flags, std::string* key_file, std::string* passphrase) {
  if (!flags.key_file.empty()) {
    *key_file = AbsolutePath(flags.key_file);
    return Status::Ok();
  }
  Result<std::string> read = GetPassphrase({.file = flags.passphrase_file});
  if (!read.ok()) return read.status();
  *passphrase = std::move(read).value();
  return Status::Ok();
}

}  // namespace quid
