#include "storage/exchange/lease.h"

#include <algorithm>
#include <cstring>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

namespace quid::exchange {
namespace {

constexpr std::string_view kSignatureLabel{"quid lease v1\0", 14};
// Times in lease records: Unix seconds before the year 36812, spans of at most 1000 years.
constexpr int64_t kMaxTimeS = int64_t{1} << 40;
constexpr int64_t kMaxSpanS = int64_t{1000} * 366 * 86400;

Bytes SignedMessage(const SignedLease& lease) {
  // Sized once and copied with memcpy: GCC 12 at -O2 misreads vector::insert of the label
  // as an out-of-bounds copy (-Warray-bounds).
  const std::string& terms = lease.terms();
  Bytes message(kSignatureLabel.size() + terms.size());
  std::memcpy(message.data(), kSignatureLabel.data(), kSignatureLabel.size());
  if (!terms.empty())
    std::memcpy(message.data() + kSignatureLabel.size(), terms.data(), terms.size());
  return message;
}

PublicKey KeyOf(const std::string& bytes) {
  PublicKey key{};
  std::memcpy(key.data(), bytes.data(), std::min(bytes.size(), key.size()));
  return key;
}

std::string AsString(const Signature& signature) {
  return std::string(reinterpret_cast<const char*>(signature.data()), signature.size());
}

Status CheckSignature(const PublicKey& key, const std::string& signature, const Bytes& message,
                      std::string_view who) {
  if (signature.size() != kSignatureBytes)
    return Status::Corrupt("lease: the " + std::string(who) + " signature is malformed");
  Signature sig{};
  std::memcpy(sig.data(), signature.data(), sig.size());
  if (!VerifySignature(key, message, sig))
    return Status::Corrupt("lease: the " + std::string(who) + " signature does not verify");
  return Status::Ok();
}

}  // namespace

std::string_view LeaseStateName(LeaseState state) {
  switch (state) {
    case LeaseState::kOffered:
      return "offered";
    case LeaseState::kActive:
      return "active";
    case LeaseState::kRenewed:
      return "renewed";
    case LeaseState::kExpiring:
      return "expiring";
    case LeaseState::kExpired:
      return "expired";
    case LeaseState::kRevoked:
      return "revoked";
  }
  return "unknown";
}

Result<LeaseTerms> DecodeTerms(const SignedLease& lease) {
  LeaseTerms terms;
  if (!terms.ParseFromString(lease.terms())) return Status::Corrupt("lease: malformed terms");
  if (terms.tenant_key().size() != kPublicKeyBytes || terms.host_key().size() != kPublicKeyBytes)
    return Status::Corrupt("lease: malformed party keys");
  if (terms.lease_id().size() != 16) return Status::Corrupt("lease: malformed id");
  if (terms.tenant_key() == terms.host_key())
    return Status::Corrupt("lease: a node cannot lease to itself");
  // Bounded, so start + term and notice_at + notice never overflow, whatever a peer signs.
  if (terms.start() < 0 || terms.start() > kMaxTimeS || terms.term_s() <= 0 ||
      terms.term_s() > kMaxSpanS || terms.notice_s() < 0 || terms.notice_s() > kMaxSpanS)
    return Status::Corrupt("lease: malformed start, term or notice");
  return terms;
}

PublicKey TenantKey(const LeaseTerms& terms) {
  return KeyOf(terms.tenant_key());
}
PublicKey HostKey(const LeaseTerms& terms) {
  return KeyOf(terms.host_key());
}

std::string LeaseIdHex(const LeaseTerms& terms) {
  return ToHex(
      ByteSpan(reinterpret_cast<const uint8_t*>(terms.lease_id().data()), terms.lease_id().size()));
}

SignedLease MakeLease(const LeaseTerms& terms) {
  SignedLease lease;
  // Deterministic, so a record made twice from the same terms is the same bytes.
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  {
    google::protobuf::io::CodedOutputStream out(&stream);
    out.SetSerializationDeterministic(true);
    terms.SerializeToCodedStream(&out);
  }
  lease.set_terms(std::move(bytes));
  return lease;
}

Status SignLease(SignedLease* lease, const PublicKey& self, const Signer& sign) {
  Result<LeaseTerms> terms = DecodeTerms(*lease);
  if (!terms.ok()) return terms.status();
  const Bytes message = SignedMessage(*lease);
  if (TenantKey(*terms) == self) {
    lease->set_tenant_signature(AsString(sign(message)));
  } else if (HostKey(*terms) == self) {
    lease->set_host_signature(AsString(sign(message)));
  } else {
    return Status(Code::kPermission, "lease: this node is not a party to it");
  }
  return Status::Ok();
}

Status VerifyLease(const SignedLease& lease, bool need_both) {
  Result<LeaseTerms> terms = DecodeTerms(lease);
  if (!terms.ok()) return terms.status();
  const Bytes message = SignedMessage(lease);
  if (!lease.host_signature().empty()) {
    Status s = CheckSignature(HostKey(*terms), lease.host_signature(), message, "host's");
    if (!s.ok()) return s;
  }
  if (!lease.tenant_signature().empty()) {
    Status s = CheckSignature(TenantKey(*terms), lease.tenant_signature(), message, "tenant's");
    if (!s.ok()) return s;
  }
  if (need_both && !FullySigned(lease)) return Status::Invalid("lease: not signed by both sides");
  if (lease.host_signature().empty() && lease.tenant_signature().empty())
    return Status::Invalid("lease: signed by no one");
  return Status::Ok();
}

bool FullySigned(const SignedLease& lease) {
  return !lease.host_signature().empty() && !lease.tenant_signature().empty();
}

int64_t EndsAt(const LeaseEntry& entry) {
  Result<LeaseTerms> terms = DecodeTerms(entry.lease());
  if (!terms.ok()) return 0;
  int64_t end = terms->start() + terms->term_s();
  if (entry.notice_at() > 0 && entry.notice_at() < kMaxTimeS)
    end = std::min(end, entry.notice_at() + terms->notice_s());
  return end;
}

LeaseState StateAt(const LeaseEntry& entry, int64_t now) {
  Result<LeaseTerms> terms = DecodeTerms(entry.lease());
  if (!terms.ok() || !FullySigned(entry.lease())) return LeaseState::kOffered;
  const int64_t term_end = terms->start() + terms->term_s();
  if (entry.notice_at() > 0 && entry.notice_at() < kMaxTimeS) {
    const int64_t notice_end = entry.notice_at() + terms->notice_s();
    if (now >= notice_end && notice_end <= term_end) return LeaseState::kRevoked;
    if (now < std::min(notice_end, term_end)) return LeaseState::kExpiring;
  }
  if (now >= term_end) return LeaseState::kExpired;
  return terms->sequence() > 0 ? LeaseState::kRenewed : LeaseState::kActive;
}

bool InForce(LeaseState state) {
  return state == LeaseState::kActive || state == LeaseState::kRenewed ||
         state == LeaseState::kExpiring;
}

}  // namespace quid::exchange
