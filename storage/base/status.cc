#include "storage/base/status.h"

#include <cstring>

namespace quid {

Status Status::FromErrno(int err, const std::string& what) {
  std::string message = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
      return Status(Code::kNotFound, message);
    case EEXIST:
      return Status(Code::kExists, message);
    case ENOSPC:
    case EDQUOT:
      return Status(Code::kNoSpace, message);
    case EACCES:
    case EPERM:
      return Status(Code::kPermission, message);
    case EINVAL:
      return Status(Code::kInvalid, message);
    default:
      return Status(Code::kIoError, message);
  }
}

int Status::to_errno() const {
  switch (code_) {
    case Code::kOk:
      return 0;
    case Code::kNotFound:
      return ENOENT;
    case Code::kExists:
      return EEXIST;
    case Code::kInvalid:
      return EINVAL;
    case Code::kCorrupt:
    case Code::kIoError:
    case Code::kUnavailable:
    case Code::kBadKey:
      return EIO;
    case Code::kNoSpace:
      return ENOSPC;
    case Code::kPermission:
      return EACCES;
    case Code::kNotDir:
      return ENOTDIR;
    case Code::kIsDir:
      return EISDIR;
    case Code::kNotEmpty:
      return ENOTEMPTY;
    case Code::kNameTooLong:
      return ENAMETOOLONG;
    case Code::kNoData:
      return ENODATA;
    case Code::kRange:
      return ERANGE;
    case Code::kCrossDevice:
      return EXDEV;
    case Code::kNotSupported:
      return EOPNOTSUPP;
    case Code::kTooManyLinks:
      return EMLINK;
    case Code::kBusy:
      return EBUSY;
    case Code::kQuota:
      return EDQUOT;
  }
  return EIO;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return message_;
}

}  // namespace quid
