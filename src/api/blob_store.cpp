#include "api/blob_store.hpp"

#include <sys/stat.h>

#include <array>
#include <fstream>
#include <iterator>
#include <system_error>

#include "core/encoding.hpp"
#include "core/random.hpp"
#include "core/sha256.hpp"

namespace infernet::api {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxTypeBytes = 127;
constexpr std::string_view kDefaultType = "application/octet-stream";
constexpr std::string_view kTypeSuffix = ".type";

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Result<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "blob store: cannot open " + path.filename().string());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return make_error(ErrorCode::kIo, "blob store: cannot read " + path.filename().string());
  return bytes;
}

Status write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return make_error(ErrorCode::kIo, "blob store: cannot write " + path.filename().string());
  return {};
}

// A type is kept only when it is short printable ASCII: it is sent back as a header.
Status check_type(std::string_view type) {
  if (type.size() > kMaxTypeBytes) {
    return make_error(ErrorCode::kInvalidInput, "type: at most " + std::to_string(kMaxTypeBytes) + " bytes");
  }
  for (char c : type) {
    if (c < 0x20 || c > 0x7E) return make_error(ErrorCode::kInvalidInput, "type: must be printable ASCII");
  }
  return {};
}

std::string temp_name() {
  std::array<uint8_t, 8> bytes{};
  fill_random(bytes);
  return ".upload-" + hex_encode(bytes);
}

}  // namespace

bool is_text_blob(std::string_view content) {
  return content.find('\0') == std::string_view::npos && is_valid_utf8(content);
}

BlobStore::BlobStore(BlobStoreOptions options) : options_(std::move(options)) {}

bool BlobStore::is_hash(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

fs::path BlobStore::blob_path(std::string_view sha256) const {
  return options_.dir / lower(sha256);
}

Status BlobStore::check_hash(std::string_view sha256) const {
  if (!is_hash(sha256)) return make_error(ErrorCode::kInvalidInput, "sha256: must be 64 hex digits");
  return {};
}

Result<BlobDescriptor> BlobStore::stat(std::string_view sha256) const {
  if (auto st = check_hash(sha256); !st) return tl::unexpected(st.error());
  const fs::path path = blob_path(sha256);
  struct ::stat info {};
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return make_error(ErrorCode::kNotFound, "blob " + lower(sha256) + " not found");
  }
  BlobDescriptor d;
  d.sha256 = lower(sha256);
  d.size = static_cast<uint64_t>(info.st_size);
  d.uploaded = static_cast<int64_t>(info.st_mtime);
  auto type = read_file(path.string() + std::string(kTypeSuffix));
  d.type = type && !type->empty() && check_type(*type) ? *type : std::string(kDefaultType);
  return d;
}

Result<std::string> BlobStore::read(std::string_view sha256) const {
  if (auto d = stat(sha256); !d) return tl::unexpected(d.error());
  return read_file(blob_path(sha256));
}

Result<BlobDescriptor> BlobStore::put(std::string_view content, std::string_view type) {
  if (content.size() > options_.max_blob_bytes) {
    return make_error(ErrorCode::kLimitExceeded,
                      "blob: larger than " + std::to_string(options_.max_blob_bytes) + " bytes");
  }
  if (auto st = check_type(type); !st) return tl::unexpected(st.error());
  const std::string hash = hex_encode(sha256(content));
  std::lock_guard lock(mu_);
  if (auto existing = stat(hash)) return existing;

  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "blob store: cannot create its directory: " + ec.message());
  uint64_t total = 0;
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(options_.dir, ec)) {
    if (!entry.is_regular_file() || !is_hash(entry.path().filename().string())) continue;
    ++count;
    total += entry.file_size();
  }
  if (ec) return make_error(ErrorCode::kIo, "blob store: cannot list its directory: " + ec.message());
  if (count >= options_.max_blobs || total + content.size() > options_.max_total_bytes) {
    return make_error(ErrorCode::kLimitExceeded,
                      "blob store: full (" + std::to_string(count) + " blobs, " + std::to_string(total) +
                          " bytes; at most " + std::to_string(options_.max_blobs) + " blobs and " +
                          std::to_string(options_.max_total_bytes) + " bytes); delete some first");
  }

  const fs::path temp = options_.dir / temp_name();
  auto discard = [&](Error error) {
    fs::remove(temp, ec);
    return tl::unexpected(std::move(error));
  };
  if (auto st = write_file(temp, content); !st) return discard(st.error());
  // Read back what reached the disk: a short write must never be stored under the full content's name.
  auto written = sha256_file(temp.string());
  if (!written || hex_encode(*written) != hash) {
    return discard(Error{ErrorCode::kIo, "blob store: the written file does not match its hash"});
  }
  const fs::path path = blob_path(hash);
  if (auto st = write_file(path.string() + std::string(kTypeSuffix), type.empty() ? kDefaultType : type);
      !st) {
    return discard(st.error());
  }
  fs::rename(temp, path, ec);
  if (ec) return discard(Error{ErrorCode::kIo, "blob store: cannot store the blob: " + ec.message()});
  return stat(hash);
}

Status BlobStore::remove(std::string_view sha256) {
  if (auto d = stat(sha256); !d) return tl::unexpected(d.error());
  std::lock_guard lock(mu_);
  const fs::path path = blob_path(sha256);
  std::error_code ec;
  if (!fs::remove(path, ec)) {
    if (ec) return make_error(ErrorCode::kIo, "blob store: cannot delete: " + ec.message());
    return make_error(ErrorCode::kNotFound, "blob " + lower(sha256) + " not found");
  }
  fs::remove(path.string() + std::string(kTypeSuffix), ec);
  return {};
}

}  // namespace infernet::api
