#include "core/sha256.hpp"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

namespace infernet {
namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

const EVP_MD* fetched_sha256() {
  static EVP_MD* md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) throw std::runtime_error("OpenSSL: SHA256 unavailable");
    return m;
  }();
  return md;
}

EVP_MD_CTX* thread_md_ctx() {
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  return ctx.get();
}

// HMAC is built on the reused digest context rather than EVP_MAC, whose per-call setup costs more than
// hashing the few hundred bytes NIP-44 feeds it.
constexpr size_t kBlock = 64;

}  // namespace

Hash32 sha256(std::span<const uint8_t> data) {
  Hash32 out{};
  EVP_MD_CTX* ctx = thread_md_ctx();
  unsigned int len = 0;
  if (EVP_DigestInit_ex2(ctx, fetched_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx, out.data(), &len) != 1) {
    throw std::runtime_error("OpenSSL: SHA256 failed");
  }
  return out;
}

Hash32 sha256(std::string_view data) {
  return sha256(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

Result<Hash32> sha256_file(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return make_error(ErrorCode::kIo, path + ": " + std::strerror(errno));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex2(ctx.get(), fetched_sha256(), nullptr) != 1)
    return make_error(ErrorCode::kInternal, "OpenSSL: SHA256 init failed");
  std::vector<uint8_t> block(1 << 20);
  size_t n = 0;
  while ((n = std::fread(block.data(), 1, block.size(), f.get())) > 0) {
    if (EVP_DigestUpdate(ctx.get(), block.data(), n) != 1)
      return make_error(ErrorCode::kInternal, "OpenSSL: SHA256 update failed");
  }
  if (std::ferror(f.get()) != 0) return make_error(ErrorCode::kIo, path + ": read error");
  Hash32 out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1)
    return make_error(ErrorCode::kInternal, "OpenSSL: SHA256 final failed");
  return out;
}

Hash32 hmac_sha256(std::span<const uint8_t> key, std::initializer_list<std::span<const uint8_t>> parts) {
  uint8_t k[kBlock] = {};
  if (key.size() > kBlock) {
    Hash32 hk = sha256(key);
    std::memcpy(k, hk.data(), hk.size());
  } else {
    std::memcpy(k, key.data(), key.size());
  }
  uint8_t pad[kBlock];
  EVP_MD_CTX* ctx = thread_md_ctx();
  unsigned int len = 0;
  Hash32 inner{};
  for (size_t i = 0; i < kBlock; ++i)
    pad[i] = k[i] ^ 0x36;
  bool ok =
      EVP_DigestInit_ex2(ctx, fetched_sha256(), nullptr) == 1 && EVP_DigestUpdate(ctx, pad, kBlock) == 1;
  for (auto p : parts)
    ok = ok && EVP_DigestUpdate(ctx, p.data(), p.size()) == 1;
  ok = ok && EVP_DigestFinal_ex(ctx, inner.data(), &len) == 1;
  for (size_t i = 0; i < kBlock; ++i)
    pad[i] = k[i] ^ 0x5c;
  Hash32 out{};
  ok = ok && EVP_DigestInit_ex2(ctx, fetched_sha256(), nullptr) == 1 &&
       EVP_DigestUpdate(ctx, pad, kBlock) == 1 && EVP_DigestUpdate(ctx, inner.data(), inner.size()) == 1 &&
       EVP_DigestFinal_ex(ctx, out.data(), &len) == 1;
  if (!ok) throw std::runtime_error("OpenSSL: HMAC-SHA256 failed");
  return out;
}

}  // namespace infernet
