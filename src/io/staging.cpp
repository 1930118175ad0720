#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "io/io.hpp"

namespace tokmap::io {

namespace {

// Staging folders of this target that no live run holds (left by a killed run) are removed.
// A ".old" copy (the previous folder, moved aside just before the new one moves in) goes back
// into place when the run died in between, and is removed when the new folder made it.
void remove_stale(const fs::path& target, const fs::path& parent, const std::string& prefix) {
  std::error_code ec;
  std::vector<fs::path> candidates;
  for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (name.starts_with(prefix) && name.size() >= prefix.size() + 6 && it->is_directory(type_ec) &&
        !it->is_symlink(type_ec)) {
      candidates.push_back(it->path());
    }
  }
  for (const auto& path : candidates) {
    const std::string name = path.filename().string();
    const bool old_copy = name.ends_with(".old");
    const fs::path owner = old_copy ? parent / name.substr(0, name.size() - 4) : path;
    const int fd = ::open(owner.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const bool stale = fd < 0 ? old_copy : ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (fd >= 0) ::close(fd);
    if (!stale) continue;
    std::error_code remove_ec;
    if (old_copy && !fs::exists(target, remove_ec)) {
      fs::rename(path, target, remove_ec);
      if (!remove_ec) continue;
    }
    fs::remove_all(path, remove_ec);
  }
}

}  // namespace

StagingFolder::StagingFolder(fs::path target) : target_(std::move(target)) {
  const fs::path parent = target_.has_parent_path() ? target_.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(parent, ec)) {
    throw Error(target_.string() + ": cannot write: folder " + parent.string() + " does not exist");
  }
  if (fs::exists(target_, ec) && !fs::is_directory(target_, ec)) {
    throw Error(target_.string() + ": exists and is not a folder");
  }
  const std::string prefix = "." + target_.filename().string() + ".tmp-";
  remove_stale(target_, parent, prefix);
  std::string pattern = (parent / (prefix + "XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw Error(target_.string() + ": cannot create a folder next to it: " + std::strerror(errno));
  }
  staging_ = pattern;
  register_pending_folder(staging_);
  // The lock says "a live run owns this folder"; the kernel drops it when the process dies,
  // even by SIGKILL, which no signal handler sees.
  lock_fd_ = ::open(staging_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock_fd_ >= 0) ::flock(lock_fd_, LOCK_EX | LOCK_NB);
}

StagingFolder::~StagingFolder() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
  unregister_pending_folder(staging_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void StagingFolder::commit() {
  std::error_code ec;
  fs::path old;
  if (fs::exists(target_, ec)) {
    old = staging_.string() + ".old";
    fs::rename(target_, old, ec);
    if (ec) throw Error(target_.string() + ": cannot replace the existing folder: " + ec.message());
  }
  // mkdtemp made the folder private; a report is meant to be shared like any output.
  fs::permissions(staging_,
                  fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                      fs::perms::others_read | fs::perms::others_exec,
                  ec);
  fs::rename(staging_, target_, ec);
  if (ec) throw Error(target_.string() + ": cannot move the folder into place: " + ec.message());
  committed_ = true;
  if (!old.empty()) fs::remove_all(old, ec);
}

}  // namespace tokmap::io
