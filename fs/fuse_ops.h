// The FUSE low-level callbacks: each translates one kernel request into one Volume call and
// replies exactly once. fuse_frontend.cc builds the session from them; nothing else should
// need this header.
//
// Threads and locks: the callbacks run concurrently on libfuse's worker threads and take no
// lock of their own. All state lives in the Volume (safe for concurrent use) or in the
// request; there are no per-open or per-directory handles (fi->fh stays 0).
//
// Inode lifetime: Volume inode numbers are the FUSE inode numbers (kRootIno == FUSE_ROOT_ID).
// Every reply that hands the kernel an inode (lookup, mknod, mkdir, symlink, link, create,
// readdirplus) leaves the Volume's lookup count raised by one per inode; if the reply cannot
// be delivered (interrupted request) the callback forgets that count again, so the Volume's
// count always equals the kernel's.
//
// Lifetime: the FuseContext given to fuse_session_new() as userdata, and the Volume it points
// to, must outlive the session: fuse_session_destroy() still calls `destroy`.
#pragma once

#include "storage/base/status.h"

// From <fuse_lowlevel.h>; declared here so that includers need not choose a FUSE_USE_VERSION.
struct fuse_lowlevel_ops;

namespace quid {

class Volume;

struct FuseContext {
  Volume* volume = nullptr;
  double attr_timeout_s = 1.0;
  double entry_timeout_s = 1.0;
  // Written by `destroy` (the final SyncAll), read by the frontend after
  // fuse_session_destroy(); no other thread touches it then.
  Status destroy_status;
};

// The callback table; a static, so it outlives every session.
const fuse_lowlevel_ops& QuidFuseOps();

}  // namespace quid
