// A small content-addressed blob store for the consumer node's API, in the manner of Blossom (BUD-01/02):
// files a user uploads once and names in jobs by their SHA-256 (`input.files`, docs/api.md "Blobs").
//
// Layout: <dir>/<sha256> holds the bytes, <dir>/<sha256>.type the media type given at upload. An upload is
// written to a temporary file, read back and hashed, and only then renamed into place, so a blob that exists
// always has the content its name promises, even after a crash mid-write.
//
// Thread-safe: one mutex serializes uploads and deletes (the size limits are checked under it); reads take
// no lock (a blob appears by rename, whole).
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace infernet::api {

struct BlobStoreOptions {
  std::filesystem::path dir;                       // created on the first upload
  uint64_t max_blob_bytes = uint64_t{8} << 20;     // 8 MiB
  uint64_t max_total_bytes = uint64_t{256} << 20;  // the whole store
  size_t max_blobs = 1024;
};

// What BUD-02 calls a blob descriptor, less its url (the routes know the host).
struct BlobDescriptor {
  std::string sha256;  // lower-case hex
  uint64_t size = 0;
  std::string type;      // media type; "application/octet-stream" when none was given
  int64_t uploaded = 0;  // unix seconds
};

class BlobStore {
 public:
  explicit BlobStore(BlobStoreOptions options);

  // Stores `content` (type: the upload's Content-Type; "" for none). Uploading a blob that exists returns it
  // unchanged. Errors: kLimitExceeded "blob: ..." over max_blob_bytes, "blob store: full ..." over the total
  // or count limits; kInvalidInput "type: ..." for a type that is not a plain media type (at most 127
  // printable ASCII characters); kIo when the directory cannot be written.
  Result<BlobDescriptor> put(std::string_view content, std::string_view type);

  // The descriptor of a stored blob. kInvalidInput "sha256: ..." for a malformed hash; kNotFound.
  Result<BlobDescriptor> stat(std::string_view sha256) const;

  // The blob's bytes. Errors as stat(), or kIo.
  Result<std::string> read(std::string_view sha256) const;

  // Deletes the blob. Errors as stat().
  Status remove(std::string_view sha256);

  const BlobStoreOptions& options() const { return options_; }

  // True for 64 lower- or upper-case hex digits.
  static bool is_hash(std::string_view text);

 private:
  std::filesystem::path blob_path(std::string_view sha256) const;
  Status check_hash(std::string_view sha256) const;

  BlobStoreOptions options_;
  std::mutex mu_;  // serializes put() and remove()
};

// True when a blob may be given to a text model: valid UTF-8 without NUL bytes.
bool is_text_blob(std::string_view content);

}  // namespace infernet::api
