// Fuzz target: what a host does with a tenant's request. The input is a frame plaintext
// (header length | Request | payload) as the channel would hand it over; a decoded
// request is served by a real HostService on real folders. Whatever arrives, the host
// answers with a Status (never a crash), echoes the request id, refuses tenants it does
// not admit, stays inside its contribution, and its answer always fits in one frame.
//
// One service for the whole process, in a temporary folder removed at exit: opening one
// per input would spend the run on mkdir and fsync instead of on the decoder.
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "net/host_service.h"
#include "net/identity.h"
#include "net/secure_channel.h"
#include "net/wire.h"

namespace {

using quid::Bytes;
using quid::ByteSpan;
using quid::net::HostService;
using quid::net::PublicKey;

// Small, so that inputs reach "host full" and the disk a long run uses stays bounded.
constexpr uint64_t kContributionBytes = 64 * 1024;

void Check(bool ok) {
  if (!ok) std::abort();
}

PublicKey Key(uint8_t seed) {
  PublicKey key;
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(seed + i);
  return key;
}

const PublicKey& Tenant() {
  static const PublicKey key = Key(1);
  return key;
}

const PublicKey& Stranger() {
  static const PublicKey key = Key(2);
  return key;
}

std::string& DataDir() {
  static std::string dir;
  return dir;
}

void RemoveDataDir() {
  std::error_code ec;
  std::filesystem::remove_all(DataDir(), ec);
}

HostService& Service() {
  static std::unique_ptr<HostService> service = [] {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "quid-request-fuzz-XXXXXX").string();
    Check(::mkdtemp(tmpl.data()) != nullptr);
    DataDir() = tmpl;
    std::atexit(RemoveDataDir);
    quid::net::HostServiceOptions options;
    options.data_dir = tmpl;
    options.contribution_bytes = kContributionBytes;
    options.tenant_fingerprints = {quid::net::Fingerprint(Tenant())};
    quid::Result<std::unique_ptr<HostService>> opened = HostService::Open(options);
    Check(opened.ok());
    return std::move(opened).value();
  }();
  return *service;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  quid::wire::Request request;
  ByteSpan payload;
  quid::Status decoded = quid::net::DecodeMessage(ByteSpan(data, size), &request, &payload);
  if (!decoded.ok()) {
    Check(decoded.code() == quid::Code::kCorrupt);
    return 0;
  }
  HostService& service = Service();
  // Every third request id comes from a key the host does not admit.
  bool stranger = request.id() % 3 == 2;
  quid::wire::Response response;
  Bytes reply;
  service.Handle(stranger ? Stranger() : Tenant(), request, payload, &response, &reply);

  Check(response.id() == request.id());
  quid::Status status = quid::net::StatusFromResponse(response);
  if (stranger) Check(status.code() == quid::Code::kPermission);
  if (!status.ok()) Check(reply.empty() && response.result_case() == response.RESULT_NOT_SET);
  Check(service.used_bytes() <= kContributionBytes);
  // The answer goes back in one frame, sealed in place, and the tenant can read it.
  quid::Result<Bytes> answer =
      quid::net::EncodeMessage(response, reply, quid::net::kFrameOverheadBytes);
  Check(answer.ok());
  quid::wire::Response read_back;
  ByteSpan reply_payload;
  ByteSpan plain(answer->data(), answer->size() - quid::net::kFrameOverheadBytes);
  Check(quid::net::DecodeMessage(plain, &read_back, &reply_payload).ok());
  Check(reply_payload.size() == reply.size());
  return 0;
}
