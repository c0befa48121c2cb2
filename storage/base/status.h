// Status and Result<T>: how every module reports failure. No exceptions cross module lines.
//
// A Status carries a code that maps onto one errno (so the FUSE layer can reply with it
// unchanged) and a one-line human message. Result<T> is a T or a non-OK Status.
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <utility>

namespace quid {

enum class Code {
  kOk = 0,
  kNotFound,      // ENOENT: no such inode, entry, shard or key
  kExists,        // EEXIST
  kInvalid,       // EINVAL: bad argument or malformed input
  kCorrupt,       // EIO: checksum or authentication failure; never returns wrong bytes
  kIoError,       // EIO: the disk or a store failed
  kUnavailable,   // EIO: a store or host cannot be reached right now
  kNoSpace,       // ENOSPC: a store, lease or the write-back area is full
  kPermission,    // EACCES
  kNotDir,        // ENOTDIR
  kIsDir,         // EISDIR
  kNotEmpty,      // ENOTEMPTY
  kNameTooLong,   // ENAMETOOLONG
  kNoData,        // ENODATA: no such xattr
  kRange,         // ERANGE: buffer too small
  kBadKey,        // wrong passphrase or key file
  kCrossDevice,   // EXDEV
  kNotSupported,  // EOPNOTSUPP
  kTooManyLinks,  // EMLINK
  kBusy,          // EBUSY
  kQuota,         // EDQUOT: a lease's capacity is used up (the host keeps no more for this tenant)
};
// The highest code: the wire accepts codes up to it (net/wire.cc). A new code goes above,
// and this follows it.
constexpr Code kLastCode = Code::kQuota;

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Exists(std::string m) { return {Code::kExists, std::move(m)}; }
  static Status Invalid(std::string m) { return {Code::kInvalid, std::move(m)}; }
  static Status Corrupt(std::string m) { return {Code::kCorrupt, std::move(m)}; }
  static Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status NoSpace(std::string m) { return {Code::kNoSpace, std::move(m)}; }
  static Status BadKey(std::string m) { return {Code::kBadKey, std::move(m)}; }
  // An I/O failure described by an errno value from a system call.
  static Status FromErrno(int err, const std::string& what);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // The errno a FUSE reply should carry for this status (0 when ok).
  int to_errno() const;
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the reason there is none. Access value() only when ok().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace quid

// Early return of a non-OK Status from the enclosing function.
#define QUID_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::quid::Status quid_status_ = (expr);        \
    if (!quid_status_.ok()) return quid_status_; \
  } while (0)

#define QUID_CONCAT_INNER(a, b) a##b
#define QUID_CONCAT(a, b) QUID_CONCAT_INNER(a, b)
// `QUID_ASSIGN_OR_RETURN(auto x, f())`: x = f().value(), or return f()'s status.
#define QUID_ASSIGN_OR_RETURN(lhs, expr)                 \
  auto QUID_CONCAT(quid_result_, __LINE__) = (expr);     \
  if (!QUID_CONCAT(quid_result_, __LINE__).ok())         \
    return QUID_CONCAT(quid_result_, __LINE__).status(); \
  lhs = std::move(QUID_CONCAT(quid_result_, __LINE__)).value()
