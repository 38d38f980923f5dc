#include "nostr/nip19.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

#include "core/encoding.hpp"

namespace infernet::nostr::nip19 {
namespace {

using Key = std::array<uint8_t, 32>;

Key key(std::string_view hex) {
  auto k = hex_decode_array<32>(hex);
  EXPECT_TRUE(k.has_value()) << hex;
  return k.value_or(Key{});
}

// From the NIP-19 text.
constexpr std::string_view kSpecNpub = "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg";
constexpr std::string_view kSpecNpubHex = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e";
constexpr std::string_view kSpecNsec = "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5";
constexpr std::string_view kSpecNsecHex = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa";
constexpr std::string_view kSpecNprofile =
    "nprofile1qqsrhuxx8l9ex335q7he0f09aej04zpazpl0ne2cgukyawd24mayt8gpp4mhxue69uhhytnc9e3k7mgpz4mhxue69uhkg6n"
    "zv9ej"
    "uumpv34kytnrdaksjlyr9p";
constexpr std::string_view kPubHex = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d";
// kSpecNpubHex doubles as an event id in the nostr-tools vectors below.
constexpr std::string_view kIdHex = kSpecNpubHex;

template <class T>
const T* get(const Result<Entity>& r) {
  if (!r) return nullptr;
  return std::get_if<T>(&*r);
}

// Expects failure with `code` and a message containing `word`.
void expect_error(std::string_view input, ErrorCode code, std::string_view word) {
  SCOPED_TRACE(std::string(input.substr(0, 120)));
  auto r = decode(input);
  ASSERT_FALSE(r.has_value()) << "decoded as " << entity_type(*r);
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_NE(r.error().message.find(word), std::string::npos) << r.error().message;
}

TEST(Nip19, SpecNpub) {
  EXPECT_EQ(encode_npub(key(kSpecNpubHex)), kSpecNpub);
  auto r = decode(kSpecNpub);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_NE(get<Npub>(r), nullptr);
  EXPECT_EQ(get<Npub>(r)->key, key(kSpecNpubHex));
  EXPECT_EQ(entity_type(*r), "npub");
}

TEST(Nip19, SpecNsec) {
  EXPECT_EQ(encode_nsec(key(kSpecNsecHex)), kSpecNsec);
  auto r = decode(kSpecNsec);
  ASSERT_NE(get<Nsec>(r), nullptr);
  EXPECT_EQ(get<Nsec>(r)->key, key(kSpecNsecHex));
  EXPECT_EQ(entity_type(*r), "nsec");
}

TEST(Nip19, SpecNprofileDecodes) {
  auto r = decode(kSpecNprofile);
  ASSERT_TRUE(r) << r.error().message;
  const auto* p = get<ProfilePointer>(r);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->pubkey, key(kPubHex));
  EXPECT_EQ(p->relays, (std::vector<std::string>{"wss://r.x.com", "wss://djbas.sadkb.com"}));
  EXPECT_EQ(entity_type(*r), "nprofile");
}

// The NIP's example writes TLV 0 first; nostr-tools (and we) write relays first. Same entity, different
// string.
TEST(Nip19, NprofileMatchesNostrToolsNotSpecOrder) {
  ProfilePointer p{key(kPubHex), {"wss://r.x.com", "wss://djbas.sadkb.com"}};
  auto s = encode_nprofile(p);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(*s,
            "nprofile1qyxhwumn8ghj7u3w0qhxxmmdqy2hwumn8ghj7er2vfshxtnnv9jxkc3wvdhk6qpq80cvv07tjdrrgpa0j7j7tmn"
            "yl2yr6yr7l8j4s3"
            "evf6u64th6gkwscgnzhf");
  EXPECT_NE(*s, kSpecNprofile);
  auto back = decode(*s);
  ASSERT_NE(get<ProfilePointer>(back), nullptr);
  EXPECT_EQ(*get<ProfilePointer>(back), p);
}

// Expected strings below come from nostr-tools 2.25.2 (nip19.*Encode) run under node.
TEST(Nip19, MatchesNostrToolsSimple) {
  EXPECT_EQ(encode_note(key(kIdHex)), "note10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qnx3ujq");
  auto s = encode_nprofile({key(kPubHex), {}});
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, "nprofile1qqsrhuxx8l9ex335q7he0f09aej04zpazpl0ne2cgukyawd24mayt8g2lcy6q");
}

TEST(Nip19, NeventMatchesNostrTools) {
  struct Case {
    EventPointer event;
    std::string_view expected;
  };
  const std::vector<Case> cases = {
      {{key(kIdHex), {"wss://relay.damus.io", "wss://nos.lol"}, key(kPubHex), 1},
       "nevent1qvzqqqqqqypzqwlsccluhy6xxsr6l9a9uhhxf75g85g8a709tprjcn4e42h053vaqy28wumn8ghj7un9d3shjtnyv9kh2u"
       "ewd9hszr"
       "thwden5te0dehhxtnvdakqqgr706wy92gmlmcel2ffuh76rdewp67p5nq3g9nnufu5ydxcdtwlfc6ydewg"},
      {{key(kIdHex), {}, std::nullopt, std::nullopt},
       "nevent1qqs8ul5ug253hlh3n75jne0a5xmjur4urfxpzst88cnegg6ds6ka7nspqaj0w"},
      // kind 0 is present, not absent.
      {{key(kIdHex), {}, std::nullopt, 0u},
       "nevent1qvzqqqqqqqqzqln7n3p2jxl77x06j209lksmwtswhsdycy2pvulz09prfkr2mh6wlk4rls"},
      {{key(kIdHex), {}, key(kPubHex), 0xffffffffu},
       "nevent1qvz0lllllupzqwlsccluhy6xxsr6l9a9uhhxf75g85g8a709tprjcn4e42h053vaqqs8ul5ug253hlh3n75jne0a5xmjur"
       "4urfxpzst88"
       "cnegg6ds6ka7nsyrxy4l"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.expected));
    auto s = encode_nevent(c.event);
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(*s, c.expected);
    auto back = decode(c.expected);
    ASSERT_NE(get<EventPointer>(back), nullptr);
    EXPECT_EQ(*get<EventPointer>(back), c.event);
    EXPECT_EQ(entity_type(*back), "nevent");
  }
}

TEST(Nip19, NaddrMatchesNostrTools) {
  struct Case {
    AddressPointer address;
    std::string_view expected;
  };
  const std::vector<Case> cases = {
      {{"my-article", key(kPubHex), 30023, {"wss://relay.example.com"}},
       "naddr1qvzqqqr4gupzqwlsccluhy6xxsr6l9a9uhhxf75g85g8a709tprjcn4e42h053vaqythwumn8ghj7un9d3shjtn90psk6ur"
       "vv5hxxmmdq"
       "q9x67fdv9e8g6trd3jswvee9a"},
      {{"\xc3\xbc"
        "n"
        "\xc3\xaf"
        "c"
        "\xc3\xb8"
        "d"
        "\xc3\xa9"
        " \xe2\x9c\x93 \xf0\x9f\x9a\x80",
        key(kPubHex),
        31990,
        {}},  // "ünïcødé ✓ 🚀"
       "naddr1qvzqqqru7cpzqwlsccluhy6xxsr6l9a9uhhxf75g85g8a709tprjcn4e42h053vaqq2v80rwcwhk8sacvnp6jg8znjfjpuy"
       "ln2qqzqqhtk"},
      {{"", key(kPubHex), 0, {}},
       "naddr1qvzqqqqqqqpzqwlsccluhy6xxsr6l9a9uhhxf75g85g8a709tprjcn4e42h053vaqqqqx9xmw9"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.expected));
    auto s = encode_naddr(c.address);
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(*s, c.expected);
    auto back = decode(c.expected);
    ASSERT_NE(get<AddressPointer>(back), nullptr);
    EXPECT_EQ(*get<AddressPointer>(back), c.address);
    EXPECT_EQ(entity_type(*back), "naddr");
  }
}

TEST(Nip19, RoundTripsEveryType) {
  const Key a = key(kPubHex);
  const Key b = key(kIdHex);
  const std::vector<std::vector<std::string>> relay_sets = {
      {}, {""}, {"wss://one"}, {"wss://one", "wss://two", "wss://one"}, {"wss://\xe2\x9c\x93.example"}};

  for (const Key& k : {a, b}) {
    EXPECT_EQ(get<Npub>(decode(encode_npub(k)))->key, k);
    EXPECT_EQ(get<Nsec>(decode(encode_nsec(k)))->key, k);
    EXPECT_EQ(get<Note>(decode(encode_note(k)))->id, k);
  }
  for (const auto& relays : relay_sets) {
    ProfilePointer p{a, relays};
    auto ps = encode_nprofile(p);
    ASSERT_TRUE(ps) << ps.error().message;
    ASSERT_NE(get<ProfilePointer>(decode(*ps)), nullptr);
    EXPECT_EQ(*get<ProfilePointer>(decode(*ps)), p);

    for (const std::optional<Key>& author : {std::optional<Key>{}, std::optional<Key>{a}}) {
      for (const std::optional<uint32_t>& kind :
           {std::optional<uint32_t>{}, std::optional<uint32_t>{0}, std::optional<uint32_t>{1},
            std::optional<uint32_t>{0x80000000}}) {
        EventPointer e{b, relays, author, kind};
        auto es = encode_nevent(e);
        ASSERT_TRUE(es) << es.error().message;
        auto back = decode(*es);
        ASSERT_NE(get<EventPointer>(back), nullptr) << *es;
        EXPECT_EQ(*get<EventPointer>(back), e);
      }
    }

    for (std::string_view identifier : {"", "x", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "1"}) {
      AddressPointer ad{std::string(identifier), a, 30023, relays};
      auto as = encode_naddr(ad);
      ASSERT_TRUE(as) << as.error().message;
      auto back = decode(*as);
      ASSERT_NE(get<AddressPointer>(back), nullptr) << *as;
      EXPECT_EQ(*get<AddressPointer>(back), ad);
    }
  }
}

TEST(Nip19, UppercaseAccepted) {
  std::string upper(kSpecNpub);
  for (char& c : upper)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto r = decode(upper);
  ASSERT_NE(get<Npub>(r), nullptr);
  EXPECT_EQ(get<Npub>(r)->key, key(kSpecNpubHex));
}

TEST(Nip19, EntityTypeNames) {
  EXPECT_EQ(entity_type(Npub{}), "npub");
  EXPECT_EQ(entity_type(Nsec{}), "nsec");
  EXPECT_EQ(entity_type(Note{}), "note");
  EXPECT_EQ(entity_type(ProfilePointer{}), "nprofile");
  EXPECT_EQ(entity_type(EventPointer{}), "nevent");
  EXPECT_EQ(entity_type(AddressPointer{}), "naddr");
}

// NIP-19: unknown TLV types are ignored. The first TLV 0 wins when repeated, as in nostr-tools.
TEST(Nip19, UnknownAndRepeatedTlvs) {
  auto r = decode(
      "nprofile1qurxvat5w4ex2qpq80cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwszpmhwden5te0vyjrad2"
      "g");  // type 7
  ASSERT_NE(get<ProfilePointer>(r), nullptr) << (r ? "" : r.error().message);
  EXPECT_EQ(*get<ProfilePointer>(r), (ProfilePointer{key(kPubHex), {"wss://a"}}));

  auto twice = decode(
      "nprofile1qqsrhuxx8l9ex335q7he0f09aej04zpazpl0ne2cgukyawd24mayt8gqypl8a8zz4ydlauvl4y57tldpkuhqa0q6fsg5z"
      "ee7y72zx"
      "nvx4h05uzx8v5z");
  ASSERT_NE(get<ProfilePointer>(twice), nullptr);
  EXPECT_EQ(get<ProfilePointer>(twice)->pubkey, key(kPubHex));
}

TEST(Nip19, RejectsBech32Errors) {
  std::string flipped(kSpecNpub);
  flipped.back() = flipped.back() == 'q' ? 'p' : 'q';
  expect_error(flipped, ErrorCode::kInvalidInput, "checksum");

  std::string mixed(kSpecNpub);
  mixed[0] = 'N';
  expect_error(mixed, ErrorCode::kInvalidInput, "mixed case");

  expect_error("", ErrorCode::kInvalidInput, "empty");
  expect_error("npub1qq", ErrorCode::kInvalidInput, "too short");
  expect_error("npubqqqqqqqqqqqqqqqq", ErrorCode::kInvalidInput, "separator");
  expect_error("1qqqqqqqqqqqq", ErrorCode::kInvalidInput, "empty prefix");
  expect_error("npub10elf", ErrorCode::kInvalidInput, "checksum");  // data part shorter than a checksum
  expect_error("npub1qqqqq", ErrorCode::kInvalidInput, "6-character");
  expect_error("npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptb", ErrorCode::kInvalidInput,
               "invalid character 'b' at position 62");
  expect_error("npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9 kw038js35mp4dma8qzvjptg", ErrorCode::kInvalidInput,
               "at position 39");
  expect_error("npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9\xc3\xa9kw038js35mp4dma8qzvjptg",
               ErrorCode::kInvalidInput, "0xc3) at position 39");
  expect_error(std::string_view("npub1\0qqqqqqqqq", 15), ErrorCode::kInvalidInput, "0x00) at position 5");

  expect_error("npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkws3w8ktc", ErrorCode::kInvalidInput,
               "bech32m");
  expect_error("npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkw3eyr0ng", ErrorCode::kInvalidInput,
               "non-zero padding");
  expect_error("note1qqd8qf9", ErrorCode::kInvalidInput, "excess padding");
  expect_error("xyz1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqwqdqc3", ErrorCode::kUnsupported,
               "unknown prefix 'xyz'");
}

TEST(Nip19, RejectsTooLong) {
  std::string s = "npub1" + std::string(kMaxEncodedLength, 'q');
  expect_error(s, ErrorCode::kLimitExceeded, "too long");
  std::string just_over(kMaxEncodedLength + 1, 'q');
  expect_error(just_over, ErrorCode::kLimitExceeded, "too long");
}

// nostr-tools accepts these (any length for npub/nsec/note, U+FFFD for bad UTF-8); we refuse them.
TEST(Nip19, RejectsWrongPayloadLength) {
  expect_error("npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6g5f6fxy8", ErrorCode::kInvalidInput,
               "npub must hold 32 bytes, got 31");
  expect_error("npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwszwcet8k", ErrorCode::kInvalidInput,
               "npub must hold 32 bytes, got 33");
  expect_error("nsec1jlrw3c", ErrorCode::kInvalidInput, "nsec must hold 32 bytes, got 0");
  expect_error("nprofile1qqsrhuxx8l9ex335q7he0f09aej04zpazpl0ne2cgukyawd24mayt8gpqdmlllsx9uxq4",
               ErrorCode::kInvalidInput, "relay 0 (TLV 1) is not valid UTF-8");
}

TEST(Nip19, RejectsBadTlv) {
  expect_error("nprofile1qqsrhuxx8l9ex335q7he0f09aej04zpazpl0ne2cgukyawd24mayt8gp0l4q3r",
               ErrorCode::kInvalidInput, "TLV truncated: 1 byte left");
  expect_error("nprofile1qqsrhuxx8l9ex335q7hs75p6pj", ErrorCode::kInvalidInput,
               "TLV truncated: type 0 declares 32 bytes but only 10 remain");
  expect_error("nprofile1qq0nhuxx8l9ex335q7he0f09aej04zpazpl0ne2cgukyawd24may2nlp78g",
               ErrorCode::kInvalidInput, "pubkey (TLV 0) must be 32 bytes, got 31");
  expect_error("nevent1qythwumn8ghj7un9d3shjtn90psk6urvv5hxxmmdthjfn5", ErrorCode::kInvalidInput,
               "nevent: missing event id (TLV 0)");
  expect_error(
      "nevent1qqs8ul5ug253hlh3n75jne0a5xmjur4urfxpzst88cnegg6ds6ka7nszrualp33lewf5vdq847t6te0wvnags0gs0mu72kz"
      "8938tn"
      "24wlfzsl3mhws",
      ErrorCode::kInvalidInput, "author (TLV 2) must be 32 bytes, got 31");
  expect_error("nevent1qqs8ul5ug253hlh3n75jne0a5xmjur4urfxpzst88cnegg6ds6ka7nsrqvqqqqgc2ynxz",
               ErrorCode::kInvalidInput, "kind (TLV 3) must be 4 bytes, got 3");
  expect_error("naddr1qqqhsq3q80cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwst287r7",
               ErrorCode::kInvalidInput, "naddr: missing kind (TLV 3)");
  expect_error("naddr1qqqhsqcyqqq82fcel3tqj", ErrorCode::kInvalidInput,
               "naddr: missing author pubkey (TLV 2)");
  expect_error("naddr1qgsrhuxx8l9ex335q7he0f09aej04zpazpl0ne2cgukyawd24mayt8grqsqqqaf882cqxd",
               ErrorCode::kInvalidInput, "naddr: missing identifier (TLV 0)");
  // An empty payload is a valid bech32 string with no TLVs at all.
  expect_error("nprofile1p2zuer", ErrorCode::kInvalidInput, "missing pubkey");
}

TEST(Nip19, EncodeRefusesOversizedValues) {
  auto too_long_relay = encode_nprofile({key(kPubHex), {std::string(256, 'r')}});
  ASSERT_FALSE(too_long_relay);
  EXPECT_EQ(too_long_relay.error().code, ErrorCode::kLimitExceeded);
  EXPECT_NE(too_long_relay.error().message.find("at most 255"), std::string::npos)
      << too_long_relay.error().message;

  auto id255 = encode_naddr({std::string(255, 'd'), key(kPubHex), 1, {}});
  EXPECT_TRUE(id255) << id255.error().message;
  auto id256 = encode_naddr({std::string(256, 'd'), key(kPubHex), 1, {}});
  ASSERT_FALSE(id256);
  EXPECT_NE(id256.error().message.find("identifier"), std::string::npos) << id256.error().message;

  auto bad_utf8 = encode_nevent({key(kIdHex), {"wss://\xff"}, std::nullopt, std::nullopt});
  ASSERT_FALSE(bad_utf8);
  EXPECT_EQ(bad_utf8.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(bad_utf8.error().message.find("UTF-8"), std::string::npos);
}

// 11 relays of 255 bytes and one of 252 make a 3115-byte payload: 4999 characters, the longest nprofile
// possible. One more byte needs 5001. nostr-tools draws the line at the same place.
TEST(Nip19, EncodeLengthLimitBoundary) {
  auto relays = [](size_t extra) {
    std::vector<std::string> r(11, std::string(255, 'r'));
    r.push_back(std::string(252 + extra, 'r'));
    return r;
  };
  ProfilePointer at_limit{key(kPubHex), relays(0)};
  auto s = encode_nprofile(at_limit);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->size(), 4999u);
  auto back = decode(*s);
  ASSERT_NE(get<ProfilePointer>(back), nullptr) << (back ? "" : back.error().message);
  EXPECT_EQ(*get<ProfilePointer>(back), at_limit);

  auto over = encode_nprofile({key(kPubHex), relays(1)});
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, ErrorCode::kLimitExceeded);
  EXPECT_NE(over.error().message.find("too long"), std::string::npos) << over.error().message;

  // A huge relay list fails fast instead of building a huge buffer.
  auto huge = encode_nprofile({key(kPubHex), std::vector<std::string>(20000, "wss://relay.example.com")});
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code, ErrorCode::kLimitExceeded);
}

// Bech32 detects every single-character substitution, and no truncation of a valid string decodes. Under the
// sanitizer build this also shows that malformed input never reads out of bounds.
TEST(Nip19, MutationsNeverDecode) {
  const std::vector<std::string> valid = {
      std::string(kSpecNpub), std::string(kSpecNsec), std::string(kSpecNprofile),
      "nevent1qvzqqqqqqypzqwlsccluhy6xxsr6l9a9uhhxf75g85g8a709tprjcn4e42h053vaqy28wumn8ghj7un9d3shjtnyv9kh2ue"
      "wd9hszr"
      "thwden5te0dehhxtnvdakqqgr706wy92gmlmcel2ffuh76rdewp67p5nq3g9nnufu5ydxcdtwlfc6ydewg",
      "naddr1qvzqqqr4gupzqwlsccluhy6xxsr6l9a9uhhxf75g85g8a709tprjcn4e42h053vaqythwumn8ghj7un9d3shjtn90psk6urv"
      "v5hxxmm"
      "dqq9x67fdv9e8g6trd3jswvee9a"};
  constexpr std::string_view kAlphabet = "qpzry9x8gf2tvdw0s3jn54khce6mua7l1";
  for (const auto& s : valid) {
    ASSERT_TRUE(decode(s)) << s;
    for (size_t i = 0; i < s.size(); ++i) {
      for (char c : kAlphabet) {
        if (c == s[i]) continue;
        std::string m = s;
        m[i] = c;
        EXPECT_FALSE(decode(m)) << m;
      }
    }
    for (size_t len = 0; len < s.size(); ++len)
      EXPECT_FALSE(decode(std::string_view(s).substr(0, len)));
  }
}

}  // namespace
}  // namespace infernet::nostr::nip19
