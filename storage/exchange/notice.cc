#include "storage/exchange/notice.h"

#include <algorithm>
#include <cstring>
#include <string_view>

#include "storage/exchange/lease.h"

namespace quid::exchange {
namespace {

constexpr std::string_view kNoticeLabel{"quid notice v1\0", 15};
constexpr std::string_view kAckLabel{"quid notice ack v1\0", 19};

// label | notice [| acknowledged_at, 8 bytes little-endian]; built with memcpy (see
// lease.cc on GCC 12's -Warray-bounds).
Bytes Message(std::string_view label, const std::string& notice, const int64_t* acknowledged_at) {
  Bytes message(label.size() + notice.size() + (acknowledged_at != nullptr ? 8 : 0));
  std::memcpy(message.data(), label.data(), label.size());
  if (!notice.empty()) std::memcpy(message.data() + label.size(), notice.data(), notice.size());
  if (acknowledged_at != nullptr) {
    const auto at = static_cast<uint64_t>(*acknowledged_at);
    for (int b = 0; b < 8; ++b)
      message[label.size() + notice.size() + b] = static_cast<uint8_t>(at >> (8 * b));
  }
  return message;
}

std::string AsString(const Signature& signature) {
  return std::string(reinterpret_cast<const char*>(signature.data()), signature.size());
}

Status Check(const PublicKey& key, const std::string& signature, const Bytes& message,
             std::string_view who) {
  Signature sig{};
  if (signature.size() != sig.size())
    return Status::Corrupt("notice: the " + std::string(who) + " signature is malformed");
  std::memcpy(sig.data(), signature.data(), sig.size());
  if (!VerifySignature(key, message, sig))
    return Status::Corrupt("notice: the " + std::string(who) + " signature does not verify");
  return Status::Ok();
}

}  // namespace

SignedNotice MakeNotice(const LeaseTerms& terms, uint64_t capacity, int64_t now,
                        const Signer& host_sign) {
  LeaseNotice notice;
  notice.set_lease_id(terms.lease_id());
  notice.set_capacity_bytes(capacity);
  notice.set_given_at(now);
  SignedNotice signed_notice;
  signed_notice.set_notice(notice.SerializeAsString());
  signed_notice.set_host_signature(
      AsString(host_sign(Message(kNoticeLabel, signed_notice.notice(), nullptr))));
  return signed_notice;
}

void AcknowledgeNotice(SignedNotice* notice, int64_t now, const Signer& tenant_sign) {
  notice->set_acknowledged_at(now);
  const int64_t at = notice->acknowledged_at();
  notice->set_tenant_signature(AsString(tenant_sign(Message(kAckLabel, notice->notice(), &at))));
}

Result<LeaseNotice> DecodeNotice(const SignedNotice& notice) {
  LeaseNotice decoded;
  if (notice.notice().empty() || !decoded.ParseFromString(notice.notice()))
    return Status::Corrupt("notice: the record does not parse");
  return decoded;
}

Status VerifyNotice(const SignedNotice& notice, const LeaseTerms& terms) {
  QUID_ASSIGN_OR_RETURN(LeaseNotice decoded, DecodeNotice(notice));
  if (decoded.lease_id() != terms.lease_id())
    return Status::Invalid("notice: it is about another lease");
  QUID_RETURN_IF_ERROR(Check(HostKey(terms), notice.host_signature(),
                             Message(kNoticeLabel, notice.notice(), nullptr), "host's"));
  if (notice.tenant_signature().empty()) {
    if (notice.acknowledged_at() != 0)
      return Status::Corrupt("notice: acknowledged without the tenant's signature");
    return Status::Ok();
  }
  const int64_t at = notice.acknowledged_at();
  return Check(TenantKey(terms), notice.tenant_signature(),
               Message(kAckLabel, notice.notice(), &at), "tenant's");
}

bool Acknowledged(const SignedNotice& notice) {
  return !notice.tenant_signature().empty() && notice.acknowledged_at() > 0;
}

bool AdoptNotice(LeaseEntry* entry, const SignedNotice& notice) {
  Result<LeaseNotice> incoming = DecodeNotice(notice);
  if (!incoming.ok()) return false;
  bool newer = true;
  if (entry->has_notice()) {
    Result<LeaseNotice> held = DecodeNotice(entry->notice());
    if (held.ok()) {
      if (incoming->given_at() < held->given_at()) {
        newer = false;
      } else if (notice.notice() == entry->notice().notice()) {
        newer = Acknowledged(notice) && !Acknowledged(entry->notice());  // the same, now acked
      }
    }
  }
  if (!newer) return false;
  *entry->mutable_notice() = notice;
  entry->set_notice_at(
      Acknowledged(notice) && incoming->capacity_bytes() == 0 ? notice.acknowledged_at() : 0);
  return true;
}

uint64_t CapacityAt(const LeaseEntry& entry, int64_t now) {
  Result<LeaseTerms> terms = DecodeTerms(entry.lease());
  if (!terms.ok() || !InForce(StateAt(entry, now))) return 0;
  uint64_t capacity = terms->capacity_bytes();
  if (entry.has_notice() && Acknowledged(entry.notice())) {
    Result<LeaseNotice> notice = DecodeNotice(entry.notice());
    if (notice.ok() && now >= entry.notice().acknowledged_at() + terms->notice_s())
      capacity = std::min(capacity, notice->capacity_bytes());
  }
  return capacity;
}

uint64_t CapacityPromised(const LeaseEntry& entry, int64_t now) {
  Result<LeaseTerms> terms = DecodeTerms(entry.lease());
  if (!terms.ok()) return 0;
  const LeaseState state = StateAt(entry, now);
  if (state != LeaseState::kActive && state != LeaseState::kRenewed &&
      state != LeaseState::kExpiring)
    return 0;
  uint64_t capacity = terms->capacity_bytes();
  if (entry.has_notice()) {
    Result<LeaseNotice> notice = DecodeNotice(entry.notice());
    if (notice.ok()) capacity = std::min(capacity, notice->capacity_bytes());
  }
  return capacity;
}

}  // namespace quid::exchange
