#include "cmd/home.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace quid {
namespace {

constexpr const char* kHomeEnv = "QUID_HOME";
constexpr const char* kDefaultUnderUserHome = ".local/share/quid";

Result<std::string> UserHome() {
  const char* env = std::getenv("HOME");
  if (env != nullptr && env[0] != '\0') return std::string(env);
  // getpwuid is enough here: this runs once, before any thread exists.
  const passwd* entry = ::getpwuid(::getuid());
  if (entry != nullptr && entry->pw_dir != nullptr && entry->pw_dir[0] != '\0') {
    return std::string(entry->pw_dir);
  }
  return Status::NotFound("no home folder: set --home or QUID_HOME");
}

}  // namespace

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) absolute = path;
  std::string normal = absolute.lexically_normal().string();
  // "a/b/" normalizes to "a/b/"; one spelling per folder keeps mount records comparable.
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal;
}

Result<std::string> ResolveHome(const std::string& flag) {
  if (!flag.empty()) return AbsolutePath(flag);
  const char* env = std::getenv(kHomeEnv);
  if (env != nullptr && env[0] != '\0') return AbsolutePath(env);
  Result<std::string> user_home = UserHome();
  if (!user_home.ok()) return user_home.status();
  return AbsolutePath((std::filesystem::path(*user_home) / kDefaultUnderUserHome).string());
}

}  // namespace quid
