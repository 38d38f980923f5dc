#include "nostr/nip44.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "core/encoding.hpp"
#include "core/sha256.hpp"

namespace infernet::nostr::nip44 {
namespace {

namespace json = boost::json;

// The official NIP-44 vectors (tests/data/nip44.vectors.json), parsed once.
const json::object& vectors() {
  static const json::value root = [] {
    std::ifstream in(std::string(INFERNET_TEST_DATA_DIR) + "/nip44.vectors.json");
    std::stringstream ss;
    ss << in.rdbuf();
    boost::system::error_code ec;
    json::value v = json::parse(ss.str(), ec);
    if (ec) return json::value(json::object());
    return v;
  }();
  static const json::object empty;
  const json::object* top = root.if_object();
  if (top == nullptr || !top->contains("v2")) return empty;
  return root.at("v2").as_object();
}

// The list at v2.<group>.<name>; empty (so the count assertions fail) when the file or the key is missing.
const json::array& vector_list(std::string_view group, std::string_view name) {
  static const json::array empty;
  const json::object& v2 = vectors();
  const json::value* g = v2.if_contains(group);
  if (g == nullptr || !g->is_object()) return empty;
  const json::value* list = g->as_object().if_contains(name);
  if (list == nullptr || !list->is_array()) return empty;
  return list->as_array();
}

std::string str(const json::value& v, std::string_view key) {
  return std::string(v.at(key).as_string());
}

std::array<uint8_t, 32> arr32(const std::string& hex) {
  auto a = hex_decode_array<32>(hex);
  EXPECT_TRUE(a) << hex;
  return a ? *a : std::array<uint8_t, 32>{};
}

// Conversation key from hex keys; fails where either key is invalid, as the invalid vectors require.
Result<ConversationKey> conversation_key_hex(std::string_view sec_hex, std::string_view pub_hex) {
  auto kp = Keypair::from_secret_hex(sec_hex);
  if (!kp) return tl::unexpected(kp.error());
  auto pub = PublicKey::from_hex(pub_hex);
  if (!pub) return tl::unexpected(pub.error());
  return conversation_key(*kp, *pub);
}

ConversationKey test_key() {
  return arr32("c41c775356fd92eadc63ff5a0dc1da211b268cbea22316767095b2871ea1412d");
}

std::array<uint8_t, 32> test_nonce(uint8_t fill) {
  std::array<uint8_t, 32> n{};
  n.fill(fill);
  return n;
}

TEST(Nip44Vectors, ConversationKey) {
  const auto& list = vector_list("valid", "get_conversation_key");
  ASSERT_EQ(list.size(), 35u);
  for (const auto& v : list) {
    SCOPED_TRACE(str(v, "sec1") + " " + str(v, "pub2"));
    auto key = conversation_key_hex(str(v, "sec1"), str(v, "pub2"));
    ASSERT_TRUE(key) << key.error().to_string();
    EXPECT_EQ(hex_encode(*key), str(v, "conversation_key"));
  }
}

TEST(Nip44Vectors, MessageKeys) {
  const json::value* valid = vectors().if_contains("valid");
  ASSERT_NE(valid, nullptr);
  const json::value* group = valid->as_object().if_contains("get_message_keys");
  ASSERT_NE(group, nullptr);
  const ConversationKey key = arr32(str(*group, "conversation_key"));
  const auto& list = group->at("keys").as_array();
  ASSERT_EQ(list.size(), 32u);
  for (const auto& v : list) {
    SCOPED_TRACE(str(v, "nonce"));
    MessageKeys keys = message_keys(key, arr32(str(v, "nonce")));
    EXPECT_EQ(hex_encode(keys.chacha_key), str(v, "chacha_key"));
    EXPECT_EQ(hex_encode(keys.chacha_nonce), str(v, "chacha_nonce"));
    EXPECT_EQ(hex_encode(keys.hmac_key), str(v, "hmac_key"));
  }
}

TEST(Nip44Vectors, CalcPaddedLen) {
  const auto& list = vector_list("valid", "calc_padded_len");
  ASSERT_EQ(list.size(), 24u);
  for (const auto& v : list) {
    const auto& pair = v.as_array();
    ASSERT_EQ(pair.size(), 2u);
    auto got = calc_padded_len(static_cast<size_t>(pair[0].as_int64()));
    ASSERT_TRUE(got) << pair[0].as_int64();
    EXPECT_EQ(*got, static_cast<size_t>(pair[1].as_int64())) << pair[0].as_int64();
  }
}

TEST(Nip44Vectors, EncryptDecrypt) {
  const auto& list = vector_list("valid", "encrypt_decrypt");
  ASSERT_EQ(list.size(), 10u);
  for (const auto& v : list) {
    SCOPED_TRACE(str(v, "plaintext"));
    auto kp1 = Keypair::from_secret_hex(str(v, "sec1"));
    auto kp2 = Keypair::from_secret_hex(str(v, "sec2"));
    ASSERT_TRUE(kp1 && kp2);
    const ConversationKey key = conversation_key(*kp1, kp2->public_key());
    EXPECT_EQ(hex_encode(key), str(v, "conversation_key"));
    EXPECT_EQ(conversation_key(*kp2, kp1->public_key()), key);  // symmetric

    auto payload = encrypt(str(v, "plaintext"), key, arr32(str(v, "nonce")));
    ASSERT_TRUE(payload) << payload.error().to_string();
    EXPECT_EQ(*payload, str(v, "payload"));
    auto plain = decrypt(str(v, "payload"), key);
    ASSERT_TRUE(plain) << plain.error().to_string();
    EXPECT_EQ(*plain, str(v, "plaintext"));
  }
}

TEST(Nip44Vectors, EncryptDecryptLongMessages) {
  const auto& list = vector_list("valid", "encrypt_decrypt_long_msg");
  ASSERT_EQ(list.size(), 3u);
  for (const auto& v : list) {
    SCOPED_TRACE(str(v, "pattern"));
    std::string plaintext;
    const std::string pattern = str(v, "pattern");
    const auto repeat = v.at("repeat").as_int64();
    plaintext.reserve(pattern.size() * static_cast<size_t>(repeat));
    for (int64_t i = 0; i < repeat; ++i)
      plaintext += pattern;
    EXPECT_EQ(hex_encode(sha256(plaintext)), str(v, "plaintext_sha256"));

    const ConversationKey key = arr32(str(v, "conversation_key"));
    auto payload = encrypt(plaintext, key, arr32(str(v, "nonce")));
    ASSERT_TRUE(payload) << payload.error().to_string();
    EXPECT_EQ(hex_encode(sha256(*payload)), str(v, "payload_sha256"));
    auto plain = decrypt(*payload, key);
    ASSERT_TRUE(plain) << plain.error().to_string();
    EXPECT_TRUE(*plain == plaintext);
  }
}

TEST(Nip44Vectors, InvalidConversationKey) {
  const auto& list = vector_list("invalid", "get_conversation_key");
  ASSERT_EQ(list.size(), 8u);
  for (const auto& v : list) {
    auto key = conversation_key_hex(str(v, "sec1"), str(v, "pub2"));
    ASSERT_FALSE(key) << str(v, "note");
    EXPECT_EQ(key.error().code, ErrorCode::kInvalidInput) << str(v, "note");
  }
}

TEST(Nip44Vectors, InvalidDecrypt) {
  const auto& list = vector_list("invalid", "decrypt");
  ASSERT_EQ(list.size(), 12u);
  for (const auto& v : list) {
    const std::string note = str(v, "note");
    SCOPED_TRACE(note);
    auto plain = decrypt(str(v, "payload"), arr32(str(v, "conversation_key")));
    ASSERT_FALSE(plain);
    // Our messages use the vectors' wording, so the note appears in them verbatim.
    EXPECT_NE(plain.error().message.find(note), std::string::npos) << plain.error().message;
    ErrorCode want = ErrorCode::kInvalidInput;
    if (note.starts_with("unknown encryption version")) want = ErrorCode::kUnsupported;
    if (note == "invalid MAC" || note == "invalid padding") want = ErrorCode::kDecryptFailed;
    EXPECT_EQ(plain.error().code, want) << plain.error().to_string();
  }
}

// The list predates extended lengths: of it only 0 is still invalid; the others now round-trip.
TEST(Nip44Vectors, EncryptMessageLengths) {
  const auto& list = vector_list("invalid", "encrypt_msg_lengths");
  ASSERT_EQ(list.size(), 4u);
  const ConversationKey key = test_key();
  int still_invalid = 0;
  int now_valid = 0;
  for (const auto& v : list) {
    const auto len = static_cast<size_t>(v.as_int64());
    SCOPED_TRACE(len);
    const std::string plaintext(len, 'a');
    auto payload = encrypt(plaintext, key);
    if (len == 0) {
      ASSERT_FALSE(payload);
      EXPECT_EQ(payload.error().code, ErrorCode::kInvalidInput);
      ++still_invalid;
      continue;
    }
    ASSERT_TRUE(payload) << payload.error().to_string();
    auto plain = decrypt(*payload, key);
    ASSERT_TRUE(plain) << plain.error().to_string();
    EXPECT_TRUE(*plain == plaintext);
    ++now_valid;
  }
  EXPECT_EQ(still_invalid, 1);
  EXPECT_EQ(now_valid, 3);
}

TEST(Nip44, CalcPaddedLenLimits) {
  auto zero = calc_padded_len(0);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, ErrorCode::kInvalidInput);
  auto over = calc_padded_len(kMaxPlaintextBytes + 1);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, ErrorCode::kLimitExceeded);
  EXPECT_EQ(calc_padded_len(1).value(), 32u);
  EXPECT_EQ(calc_padded_len(65537).value(), 81920u);  // chunk 16384 above 65536
  EXPECT_EQ(calc_padded_len(kMaxPlaintextBytes).value(), size_t{1} << 32);
}

size_t base64_len(size_t bytes) {
  return (bytes + 2) / 3 * 4;
}

TEST(Nip44, RoundTripLengths) {
  const ConversationKey key = test_key();
  for (size_t len : {1u, 32u, 33u, 65535u, 65536u, 65537u}) {
    SCOPED_TRACE(len);
    std::string plaintext(len, 'z');
    plaintext.front() = 'A';
    plaintext.back() = 'Z';
    auto payload = encrypt(plaintext, key);
    ASSERT_TRUE(payload) << payload.error().to_string();
    // version + nonce + length prefix (6 bytes from 65536 on) + padded plaintext + mac
    const size_t prefix = len >= 65536 ? 6 : 2;
    EXPECT_EQ(payload->size(), base64_len(1 + 32 + prefix + calc_padded_len(len).value() + 32));
    auto plain = decrypt(*payload, key);
    ASSERT_TRUE(plain) << plain.error().to_string();
    EXPECT_TRUE(*plain == plaintext);
  }
}

TEST(Nip44, RandomNonceDiffers) {
  const ConversationKey key = test_key();
  auto a = encrypt("same", key);
  auto b = encrypt("same", key);
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
}

TEST(Nip44, RejectsBadPlaintext) {
  const ConversationKey key = test_key();
  auto empty = encrypt("", key);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidInput);
  for (std::string_view bad : {std::string_view("\xff"), std::string_view("ok\xc3"),
                               std::string_view("\xed\xa0\x80"), std::string_view("\xc0\xaf")}) {
    auto r = encrypt(bad, key);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
    EXPECT_NE(r.error().message.find("UTF-8"), std::string::npos);
  }
}

TEST(Nip44, WrongKeyFailsMac) {
  auto payload = encrypt("secret", test_key());
  ASSERT_TRUE(payload);
  ConversationKey other = test_key();
  other[0] ^= 1;
  auto plain = decrypt(*payload, other);
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().code, ErrorCode::kDecryptFailed);
  EXPECT_EQ(plain.error().message, "invalid MAC");
}

// Flipping any bit of any byte (version, nonce, ciphertext, mac) must be detected.
TEST(Nip44, TamperingAnyByteFails) {
  const ConversationKey key = test_key();
  auto payload = encrypt("tamper with me", key, test_nonce(7));
  ASSERT_TRUE(payload);
  const Bytes data = base64_decode(*payload).value();
  ASSERT_EQ(data.size(), 1u + 32 + 2 + 32 + 32);
  for (size_t i = 0; i < data.size(); ++i) {
    for (uint8_t flip : {uint8_t{0x01}, uint8_t{0x80}}) {
      Bytes bad = data;
      bad[i] ^= flip;
      auto plain = decrypt(base64_encode(bad), key);
      ASSERT_FALSE(plain) << "byte " << i;
      if (i == 0) {
        EXPECT_EQ(plain.error().code, ErrorCode::kUnsupported);
      } else {
        EXPECT_EQ(plain.error().code, ErrorCode::kDecryptFailed) << "byte " << i;
        EXPECT_EQ(plain.error().message, "invalid MAC") << "byte " << i;
      }
    }
  }
}

TEST(Nip44, TruncatedOrExtendedPayloadsFail) {
  const ConversationKey key = test_key();
  auto payload = encrypt("truncate me, please", key, test_nonce(9));
  ASSERT_TRUE(payload);
  for (size_t n = 0; n < payload->size(); ++n) {
    EXPECT_FALSE(decrypt(std::string_view(*payload).substr(0, n), key)) << n;
  }
  // Well-formed base64 of shorter or longer data.
  const Bytes data = base64_decode(*payload).value();
  for (size_t n = 0; n < data.size(); ++n) {
    EXPECT_FALSE(decrypt(base64_encode(std::span(data).first(n)), key)) << n;
  }
  for (size_t extra = 1; extra <= 64; ++extra) {
    Bytes longer = data;
    longer.resize(data.size() + extra, 0);
    EXPECT_FALSE(decrypt(base64_encode(longer), key)) << extra;
  }
}

TEST(Nip44, PayloadLimits) {
  const ConversationKey key = test_key();
  auto payload = encrypt(std::string(1000, 'q'), key);
  ASSERT_TRUE(payload);
  auto limited = decrypt(*payload, key, payload->size() - 1);
  ASSERT_FALSE(limited);
  EXPECT_EQ(limited.error().code, ErrorCode::kLimitExceeded);
  EXPECT_TRUE(decrypt(*payload, key, payload->size()));

  auto hash = decrypt("#" + std::string(200, 'A'), key);
  ASSERT_FALSE(hash);
  EXPECT_EQ(hash.error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(hash.error().message, "unknown encryption version");

  auto bad_b64 = decrypt(std::string(131, 'A') + "!", key);
  ASSERT_FALSE(bad_b64);
  EXPECT_EQ(bad_b64.error().code, ErrorCode::kInvalidInput);
  EXPECT_TRUE(bad_b64.error().message.starts_with("invalid base64"));
}

// Builds a payload around a chosen padded plaintext with a valid MAC, so the checks after authentication
// (padding, UTF-8) can be reached. ChaCha20 is a XOR stream: encrypting a same-length reference message with
// the same nonce gives the keystream.
std::string forge(const Bytes& padded, const ConversationKey& key, const std::array<uint8_t, 32>& nonce) {
  // A reference plaintext whose padded form has the wanted size.
  const size_t target = padded.size();
  size_t len = 0;
  for (size_t candidate = 1; candidate <= 0xffff; ++candidate) {
    if (2 + calc_padded_len(candidate).value() == target) {
      len = candidate;
      break;
    }
  }
  EXPECT_NE(len, 0u) << "no short-prefix plaintext pads to " << target;
  const std::string reference(len, 'r');
  Bytes ref_padded(target, 0);
  ref_padded[0] = static_cast<uint8_t>(len >> 8);
  ref_padded[1] = static_cast<uint8_t>(len);
  std::memcpy(ref_padded.data() + 2, reference.data(), len);

  Bytes data = base64_decode(encrypt(reference, key, nonce).value()).value();
  uint8_t* ct = data.data() + 33;
  for (size_t i = 0; i < target; ++i)
    ct[i] = static_cast<uint8_t>(ct[i] ^ ref_padded[i] ^ padded[i]);
  const MessageKeys keys = message_keys(key, nonce);
  const Hash32 mac = hmac_sha256(keys.hmac_key, {nonce, std::span<const uint8_t>(ct, target)});
  std::memcpy(ct + target, mac.data(), 32);
  return base64_encode(data);
}

TEST(Nip44, ForgedPaddingAndUtf8AreRejected) {
  const ConversationKey key = test_key();
  const auto nonce = test_nonce(3);
  auto padded_with = [](std::initializer_list<uint8_t> head, size_t size) {
    Bytes b(size, 0);
    std::copy(head.begin(), head.end(), b.begin());
    return b;
  };
  // Sanity: the forger reproduces a valid message.
  EXPECT_EQ(decrypt(forge(padded_with({0, 3, 'a', 'b', 'c'}, 34), key, nonce), key).value(), "abc");

  struct Case {
    Bytes padded;
    const char* why;
  };
  const std::vector<Case> cases = {
      {padded_with({0, 33, 'x'}, 34), "length needs 64 padded bytes, buffer has 32"},
      {padded_with({0, 200}, 34), "length beyond the buffer"},
      {padded_with({0xff, 0xff}, 34), "u16 max in a small buffer"},
      {padded_with({0, 0, 0, 0, 0, 0}, 34), "extended prefix with length 0"},
      {padded_with({0, 0, 0, 0, 0, 1}, 34), "extended prefix with a length that fits the short form"},
      {padded_with({0, 0, 0, 0, 0xff, 0xff}, 34), "extended prefix with 65535"},
      {padded_with({0, 0, 0, 1, 0, 0}, 34), "extended 65536 in a small buffer"},
      {padded_with({0, 0, 0xff, 0xff, 0xff, 0xff}, 34), "extended u32 max in a small buffer"},
      {padded_with({0, 1, 'a'}, 66), "short message with too much padding"},
  };
  for (const auto& c : cases) {
    auto plain = decrypt(forge(c.padded, key, nonce), key);
    ASSERT_FALSE(plain) << c.why;
    EXPECT_EQ(plain.error().code, ErrorCode::kDecryptFailed) << c.why;
    EXPECT_EQ(plain.error().message, "invalid padding") << c.why;
  }

  auto not_utf8 = decrypt(forge(padded_with({0, 2, 0xc3, 0x28}, 34), key, nonce), key);
  ASSERT_FALSE(not_utf8);
  EXPECT_EQ(not_utf8.error().code, ErrorCode::kDecryptFailed);
  EXPECT_NE(not_utf8.error().message.find("UTF-8"), std::string::npos);

  auto version = base64_decode(forge(padded_with({0, 1, 'a'}, 34), key, nonce)).value();
  version[0] = 1;
  auto v1 = decrypt(base64_encode(version), key);
  ASSERT_FALSE(v1);
  EXPECT_EQ(v1.error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(v1.error().message, "unknown encryption version 1");
}

// A short hammer in the spirit of the fuzz target: random mutations of a valid payload never crash (ASan
// checks the bounds) and never decrypt to something else.
TEST(Nip44, RandomMutationsNeverCrash) {
  const ConversationKey key = test_key();
  const std::string payload = encrypt("fuzz me gently", key, test_nonce(5)).value();
  std::mt19937 rng(12345);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=#!";
  for (int i = 0; i < 3000; ++i) {
    std::string p = payload;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 3) {
        case 0:
          if (!p.empty()) p[rng() % p.size()] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          if (!p.empty()) p.erase(rng() % p.size(), 1 + rng() % 8);
          break;
        default:
          p.insert(rng() % (p.size() + 1), std::string(1 + rng() % 8, alphabet[rng() % alphabet.size()]));
      }
    }
    auto plain = decrypt(p, key);
    if (plain) {
      EXPECT_EQ(*plain, "fuzz me gently") << p;
    }
  }
}

TEST(Nip44, ConcurrentUse) {
  const ConversationKey key = test_key();
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string msg = "thread " + std::to_string(t) + " message " + std::to_string(i);
        auto payload = encrypt(msg, key);
        auto plain = payload ? decrypt(*payload, key) : Result<std::string>(tl::unexpected(payload.error()));
        if (!plain || *plain != msg) ++failures[t];
      }
    });
  }
  for (auto& th : threads)
    th.join();
  for (int f : failures)
    EXPECT_EQ(f, 0);
}

}  // namespace
}  // namespace infernet::nostr::nip44
