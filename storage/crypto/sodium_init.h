// The one place libsodium is initialised. sodium_init seeds the CSPRNG, detects AES-NI
// (without it AES-256-GCM reports unavailable) and picks this CPU's fastest BLAKE2b,
// ChaCha20 and Poly1305 code. Every module that uses libsodium calls EnsureSodium() first.
#pragma once

namespace quid {

// Idempotent and thread-safe; free after the first call. Aborts the process if libsodium
// cannot initialise: no key or cipher is safe without it.
void EnsureSodium();

}  // namespace quid
