#include "engine/llama/model_catalog.hpp"

#include <ggml.h>
#include <gguf.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <fstream>

#include "core/encoding.hpp"
#include "core/sha256.hpp"

namespace infernet::engine::llama {
namespace {
namespace fs = std::filesystem;

class ModelCatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("infernet-catalog-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A small GGUF with two tensors: a 64x32 q8_0-free f16 matrix and a 64-element f32 vector.
  fs::path write_gguf(const std::string& name, bool with_arch = true) {
    gguf_context* g = gguf_init_empty();
    if (with_arch) gguf_set_val_str(g, "general.architecture", "llama");
    gguf_set_val_str(g, "general.name", "catalog test");
    gguf_set_val_u32(g, "llama.context_length", 4096);
    gguf_set_val_str(g, "tokenizer.chat_template", "{{ messages }}");
    ggml_init_params ip{.mem_size = 1 << 20, .mem_buffer = nullptr, .no_alloc = false};
    ggml_context* ctx = ggml_init(ip);
    ggml_tensor* w = ggml_new_tensor_2d(ctx, GGML_TYPE_F16, 64, 32);
    ggml_set_name(w, "blk.0.w");
    ggml_tensor* v = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 64);
    ggml_set_name(v, "blk.0.norm");
    std::memset(w->data, 0, ggml_nbytes(w));
    std::memset(v->data, 0, ggml_nbytes(v));
    gguf_add_tensor(g, w);
    gguf_add_tensor(g, v);
    const fs::path path = dir_ / (name + ".gguf");
    EXPECT_TRUE(gguf_write_to_file(g, path.c_str(), false));
    gguf_free(g);
    ggml_free(ctx);
    return path;
  }

  fs::path dir_;
};

TEST_F(ModelCatalogTest, ReadsTheHeaderWithoutLoadingWeights) {
  const fs::path path = write_gguf("small");
  auto info = read_gguf_info(path);
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->name, "small");
  EXPECT_EQ(info->architecture, "llama");
  EXPECT_EQ(info->display_name, "catalog test");
  EXPECT_EQ(info->context_length, 4096U);
  EXPECT_EQ(info->chat_template, "{{ messages }}");
  EXPECT_EQ(info->parameters, 64U * 32U + 64U);
  EXPECT_EQ(info->quantization, "f16");
  EXPECT_EQ(info->file_bytes, fs::file_size(path));
}

TEST_F(ModelCatalogTest, RefusesATruncatedFileNamingTheTensorThatIsCut) {
  const fs::path path = write_gguf("cut");
  fs::resize_file(path, fs::file_size(path) - 100);
  auto info = read_gguf_info(path);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(info.error().message.find("truncated"), std::string::npos) << info.error().message;
  EXPECT_NE(info.error().message.find("cut.gguf"), std::string::npos);
}

TEST_F(ModelCatalogTest, RefusesFilesThatAreNotGguf) {
  const fs::path junk = dir_ / "junk.gguf";
  std::ofstream(junk) << "this is not a model";
  auto info = read_gguf_info(junk);
  ASSERT_FALSE(info);
  EXPECT_NE(info.error().message.find("not a valid GGUF"), std::string::npos) << info.error().message;

  const fs::path header_only = dir_ / "header.gguf";
  std::ofstream(header_only) << "GGUF";
  EXPECT_FALSE(read_gguf_info(header_only));

  auto no_arch = read_gguf_info(write_gguf("noarch", false));
  ASSERT_FALSE(no_arch);
  EXPECT_NE(no_arch.error().message.find("general.architecture"), std::string::npos);
}

TEST_F(ModelCatalogTest, ScanSkipsBadFilesAndKeepsGoodOnes) {
  write_gguf("good");
  std::ofstream(dir_ / "broken.gguf") << "GGUF garbage";
  std::ofstream(dir_ / "notes.txt") << "ignored: not a .gguf";
  FingerprintCache cache("");
  auto catalog = scan_models(dir_, cache);
  ASSERT_TRUE(catalog) << catalog.error().message;
  ASSERT_EQ(catalog->models.size(), 1U);
  EXPECT_EQ(catalog->models[0].name, "good");
  auto want = sha256_file((dir_ / "good.gguf").string());
  ASSERT_TRUE(want);
  EXPECT_EQ(catalog->models[0].sha256, hex_encode(*want));
  ASSERT_EQ(catalog->skipped.size(), 1U);
  EXPECT_EQ(catalog->skipped[0].path.filename(), "broken.gguf");

  EXPECT_FALSE(scan_models(dir_ / "missing", cache));
}

TEST_F(ModelCatalogTest, FingerprintsAreComputedOnceAndRedoneWhenTheFileChanges) {
  const fs::path path = write_gguf("fp");
  const fs::path cache_file = dir_ / "fingerprints";
  std::string first;
  {
    FingerprintCache cache(cache_file);
    auto sha = cache.fingerprint(path);
    ASSERT_TRUE(sha);
    first = *sha;
    EXPECT_EQ(cache.computed(), 1U);
    ASSERT_TRUE(cache.fingerprint(path));
    EXPECT_EQ(cache.computed(), 1U);
  }
  {
    // A new process: the cache file answers.
    FingerprintCache cache(cache_file);
    auto sha = cache.fingerprint(path);
    ASSERT_TRUE(sha);
    EXPECT_EQ(*sha, first);
    EXPECT_EQ(cache.computed(), 0U);
  }
  {
    // The file changed: size and time differ, so it is hashed again.
    std::ofstream(path, std::ios::app) << "more bytes";
    FingerprintCache cache(cache_file);
    auto sha = cache.fingerprint(path);
    ASSERT_TRUE(sha);
    EXPECT_NE(*sha, first);
    EXPECT_EQ(cache.computed(), 1U);
  }
}

}  // namespace
}  // namespace infernet::engine::llama
