// Fuzz target: what a tenant decodes from a host. The input is a frame plaintext
// (header length | Response | payload) as the channel would hand it over. Decoding must
// end in a Status, and a decoded response must map to a Status whose code is one quid
// knows; re-encoding what was decoded must be stable.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "net/wire.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  quid::wire::Response response;
  quid::ByteSpan payload;
  quid::Status decoded = quid::net::DecodeMessage(quid::ByteSpan(data, size), &response, &payload);
  if (!decoded.ok()) {
    Check(decoded.code() == quid::Code::kCorrupt);
    return 0;
  }
  Check(payload.data() >= data && payload.data() + payload.size() == data + size);

  quid::Status status = quid::net::StatusFromResponse(response);
  Check(status.ok() == (response.code() == 0));
  Check(static_cast<int>(status.code()) >= 0 &&
        static_cast<int>(status.code()) <= static_cast<int>(quid::kLastCode));

  // Whatever a tenant decoded, it can put back on the wire and read again unchanged.
  quid::Result<quid::Bytes> again = quid::net::EncodeMessage(response, payload, 0);
  if (!again.ok()) return 0;
  quid::wire::Response reread;
  quid::ByteSpan payload2;
  Check(quid::net::DecodeMessage(*again, &reread, &payload2).ok());
  Check(reread.SerializeAsString() == response.SerializeAsString());
  Check(std::equal(payload.begin(), payload.end(), payload2.begin(), payload2.end()));
  return 0;
}
