#include "storage/crypto/sodium_init.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>

namespace quid {

void EnsureSodium() {
  static const bool initialized = [] {
    if (sodium_init() < 0) {
      std::fputs("quid: libsodium failed to initialize\n", stderr);
      std::abort();
    }
    return true;
  }();
  (void)initialized;
}

}  // namespace quid
