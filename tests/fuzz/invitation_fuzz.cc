// Fuzz target: an invitation code as a person pastes it (quid join). Decoding must end in a
// Status, never read out of bounds; a code that decodes must pass CheckInvitation and
// encode back to a code that decodes to the same fields.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "net/invitation.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  quid::Result<quid::net::Invitation> code = quid::net::DecodeInvitation(text);
  if (!code.ok()) {
    Check(code.status().code() == quid::Code::kInvalid);
    return 0;
  }
  Check(quid::net::CheckInvitation(*code).ok());
  quid::Result<quid::net::Invitation> again =
      quid::net::DecodeInvitation(quid::net::EncodeInvitation(*code));
  Check(again.ok());
  Check(again->addresses == code->addresses && again->secret == code->secret &&
        again->key_fingerprint == code->key_fingerprint && again->expires_at == code->expires_at &&
        again->capacity_bytes == code->capacity_bytes && again->ratio_milli == code->ratio_milli);
  return 0;
}
