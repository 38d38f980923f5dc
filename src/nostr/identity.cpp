#include "nostr/identity.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <openssl/crypto.h>

#include "core/encoding.hpp"
#include "nostr/nip19.hpp"

namespace infernet::nostr {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

Error io_error(const std::string& what, const std::string& path) {
  return Error{ErrorCode::kIo, what + " '" + path + "': " + std::strerror(errno)};
}

// Closes a descriptor on every path out of a function.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

Result<Keypair> parse_secret_key(std::string_view text) {
  text = trim(text);
  if (text.starts_with("nsec1") || text.starts_with("NSEC1")) {
    auto entity = nip19::decode(text);
    if (!entity) return make_error(ErrorCode::kInvalidInput, "secret key: " + entity.error().message);
    auto* nsec = std::get_if<nip19::Nsec>(&*entity);
    if (nsec == nullptr) return make_error(ErrorCode::kInvalidInput, "secret key: not an nsec");
    auto kp = Keypair::from_secret(nsec->key);
    OPENSSL_cleanse(nsec->key.data(), nsec->key.size());
    return kp;
  }
  if (text.starts_with("npub1")) {
    return make_error(ErrorCode::kInvalidInput, "secret key: this is a public key (npub), not a secret key");
  }
  return Keypair::from_secret_hex(text);
}

Result<PublicKey> parse_public_key(std::string_view text) {
  text = trim(text);
  if (text.starts_with("npub1") || text.starts_with("NPUB1")) {
    auto entity = nip19::decode(text);
    if (!entity) return make_error(ErrorCode::kInvalidInput, "public key: " + entity.error().message);
    const auto* npub = std::get_if<nip19::Npub>(&*entity);
    if (npub == nullptr) return make_error(ErrorCode::kInvalidInput, "public key: not an npub");
    return PublicKey::from_bytes(npub->key);
  }
  if (text.starts_with("nsec1")) {
    return make_error(ErrorCode::kInvalidInput, "public key: this is a secret key (nsec); never share it");
  }
  return PublicKey::from_hex(text);
}

Status write_key_file(const std::string& path, const Keypair& keys, bool overwrite) {
  namespace fs = std::filesystem;
  fs::path target(path);
  std::error_code ec;
  if (!overwrite && fs::exists(target, ec)) {
    return make_error(ErrorCode::kAlreadyExists, "key file '" + path + "' already exists");
  }
  fs::path dir = target.parent_path();
  if (!dir.empty() && !fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) return make_error(ErrorCode::kIo, "cannot create '" + dir.string() + "': " + ec.message());
    fs::permissions(dir, fs::perms::owner_all, ec);
  }
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  std::string line = nip19::encode_nsec(keys.secret()) + "\n";
  {
    FileDescriptor fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fd.get() < 0) return tl::unexpected(io_error("cannot create", tmp));
    ssize_t n = ::write(fd.get(), line.data(), line.size());
    if (n != static_cast<ssize_t>(line.size()) || ::fsync(fd.get()) != 0) {
      ::unlink(tmp.c_str());
      return tl::unexpected(io_error("cannot write", tmp));
    }
  }
  OPENSSL_cleanse(line.data(), line.size());
  // link() fails if the target exists, which keeps "no overwrite" race-free; rename() replaces atomically.
  int rc = overwrite ? ::rename(tmp.c_str(), path.c_str()) : ::link(tmp.c_str(), path.c_str());
  int saved = errno;
  ::unlink(tmp.c_str());
  if (rc != 0) {
    errno = saved;
    if (saved == EEXIST)
      return make_error(ErrorCode::kAlreadyExists, "key file '" + path + "' already exists");
    return tl::unexpected(io_error("cannot install key file", path));
  }
  return {};
}

Result<Keypair> read_key_file(const std::string& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      return make_error(ErrorCode::kNotFound,
                        "key file '" + path + "' does not exist (create one with 'infernet key new')");
    }
    return tl::unexpected(io_error("cannot open key file", path));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return tl::unexpected(io_error("cannot stat key file", path));
  if (!S_ISREG(st.st_mode))
    return make_error(ErrorCode::kInvalidInput, "key file '" + path + "' is not a file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(ErrorCode::kPermissionDenied, "key file '" + path +
                                                        "' is accessible by group or others (mode " + mode +
                                                        "); fix it with: chmod 600 " + path);
  }
  if (st.st_size > 4096) return make_error(ErrorCode::kInvalidInput, "key file '" + path + "' is too large");
  std::string text(static_cast<size_t>(st.st_size), '\0');
  ssize_t n = ::read(fd.get(), text.data(), text.size());
  if (n != st.st_size) return tl::unexpected(io_error("cannot read key file", path));
  auto kp = parse_secret_key(text);
  OPENSSL_cleanse(text.data(), text.size());
  if (!kp) return tl::unexpected(with_context(kp.error(), "key file '" + path + "'"));
  return kp;
}

}  // namespace infernet::nostr
