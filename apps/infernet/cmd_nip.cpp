// infernet nip44|nip19|nip98: the encodings and envelopes every Infernet message uses, by hand, for
// debugging.
#include <chrono>
#include <cstdio>
#include <fstream>

#include "apps/infernet/command_context.hpp"
#include "core/encoding.hpp"
#include "nostr/event.hpp"
#include "nostr/identity.hpp"
#include "nostr/nip19.hpp"
#include "nostr/nip44.hpp"
#include "nostr/nip98.hpp"

namespace infernet::cli {
namespace {

void write_stdout(std::string_view s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
}

// ---- NIP-44 ----

int run_nip44(const CommandContext& ctx, bool encrypt, const std::string& peer_text,
              const std::optional<std::string>& message) {
  auto peer = nostr::parse_public_key(peer_text);
  if (!peer) return fail(peer.error());
  auto keys = ctx.load_keys();
  if (!keys) return fail(keys.error());
  auto key = nostr::nip44::conversation_key(*keys, *peer);
  if (encrypt) {
    // The plaintext is stdin byte for byte (a trailing newline is part of it) unless --message gives it.
    auto plaintext = message ? Result<std::string>(*message) : read_stdin();
    if (!plaintext) return fail(plaintext.error());
    auto payload = nostr::nip44::encrypt(*plaintext, key);
    if (!payload) return fail(payload.error());
    write_stdout(*payload + "\n");
  } else {
    auto payload = read_stdin_trimmed();
    if (!payload) return fail(payload.error());
    auto plaintext = nostr::nip44::decrypt(*payload, key);
    if (!plaintext) return fail(plaintext.error());
    write_stdout(*plaintext);
  }
  return 0;
}

// ---- NIP-19 ----

struct Nip19EncodeOptions {
  std::string type;
  std::string value;  // hex for npub/nsec/note
  std::string pubkey;
  std::string id;
  std::string author;
  std::string identifier;
  std::optional<int64_t> kind;
  std::vector<std::string> relays;
};

Result<std::array<uint8_t, 32>> hex32(const std::string& text, const char* what) {
  auto bytes = hex_decode_array<32>(text);
  if (!bytes) return make_error(ErrorCode::kInvalidInput, std::string(what) + ": " + bytes.error().message);
  return bytes;
}

Result<uint32_t> checked_kind(const std::optional<int64_t>& kind) {
  if (!kind || *kind < 0 || *kind > 0xffffffffLL) {
    return make_error(ErrorCode::kInvalidInput, "--kind must be an integer from 0 to 4294967295");
  }
  return static_cast<uint32_t>(*kind);
}

Result<std::string> nip19_encode(const Nip19EncodeOptions& o) {
  namespace nip19 = nostr::nip19;
  if (o.type == "npub" || o.type == "nsec" || o.type == "note") {
    if (o.value.empty())
      return make_error(ErrorCode::kInvalidInput, o.type + " needs a 64-character hex value");
    auto bytes = hex32(o.value, o.type.c_str());
    if (!bytes) return tl::unexpected(bytes.error());
    if (o.type == "npub") return nip19::encode_npub(*bytes);
    if (o.type == "nsec") return nip19::encode_nsec(*bytes);
    return nip19::encode_note(*bytes);
  }
  if (o.type == "nprofile") {
    auto pk = hex32(o.pubkey, "--pubkey");
    if (!pk) return tl::unexpected(pk.error());
    return nip19::encode_nprofile({*pk, o.relays});
  }
  if (o.type == "nevent") {
    auto id = hex32(o.id, "--id");
    if (!id) return tl::unexpected(id.error());
    nip19::EventPointer p{*id, o.relays, std::nullopt, std::nullopt};
    if (!o.author.empty()) {
      auto a = hex32(o.author, "--author");
      if (!a) return tl::unexpected(a.error());
      p.author = *a;
    }
    if (o.kind) {
      auto k = checked_kind(o.kind);
      if (!k) return tl::unexpected(k.error());
      p.kind = *k;
    }
    return nip19::encode_nevent(p);
  }
  // naddr (CLI11 restricts the type to the six names)
  auto pk = hex32(o.pubkey, "--pubkey");
  if (!pk) return tl::unexpected(pk.error());
  auto k = checked_kind(o.kind);
  if (!k) return tl::unexpected(k.error());
  return nip19::encode_naddr({o.identifier, *pk, *k, o.relays});
}

void append_relays(std::string& out, const std::vector<std::string>& relays) {
  out += "\"relays\":[";
  for (size_t i = 0; i < relays.size(); ++i) {
    if (i != 0) out += ',';
    nostr::append_json_string(out, relays[i]);
  }
  out += ']';
}

// The same shape as nostr-tools' nip19.decode(): {"type": ..., "data": ...}, with bytes as hex.
std::string decoded_json(const nostr::nip19::Entity& entity) {
  namespace nip19 = nostr::nip19;
  std::string out = "{\"type\":\"";
  out += nip19::entity_type(entity);
  out += "\",\"data\":";
  auto quoted_hex = [&](const std::array<uint8_t, 32>& b) { out += "\"" + hex_encode(b) + "\""; };
  if (const auto* v = std::get_if<nip19::Npub>(&entity)) {
    quoted_hex(v->key);
  } else if (const auto* v = std::get_if<nip19::Nsec>(&entity)) {
    quoted_hex(v->key);
  } else if (const auto* v = std::get_if<nip19::Note>(&entity)) {
    quoted_hex(v->id);
  } else if (const auto* v = std::get_if<nip19::ProfilePointer>(&entity)) {
    out += "{\"pubkey\":";
    quoted_hex(v->pubkey);
    out += ',';
    append_relays(out, v->relays);
    out += '}';
  } else if (const auto* v = std::get_if<nip19::EventPointer>(&entity)) {
    out += "{\"id\":";
    quoted_hex(v->id);
    out += ',';
    append_relays(out, v->relays);
    if (v->author) {
      out += ",\"author\":";
      quoted_hex(*v->author);
    }
    if (v->kind) out += ",\"kind\":" + std::to_string(*v->kind);
    out += '}';
  } else if (const auto* v = std::get_if<nip19::AddressPointer>(&entity)) {
    out += "{\"identifier\":";
    nostr::append_json_string(out, v->identifier);
    out += ",\"pubkey\":";
    quoted_hex(v->pubkey);
    out += ",\"kind\":" + std::to_string(v->kind) + ",";
    append_relays(out, v->relays);
    out += '}';
  }
  out += "}\n";
  return out;
}

// ---- NIP-98 ----

struct Nip98Options {
  std::string url;
  std::string method;
  std::string body_file;
  int64_t now = 0;
};

Result<std::optional<std::string>> read_body(const std::string& path) {
  if (path.empty()) return std::optional<std::string>();
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "--body-file '" + path + "' cannot be read");
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return std::optional<std::string>(std::move(body));
}

int64_t now_or(int64_t given) {
  if (given != 0) return given;
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int run_nip98(const CommandContext& ctx, const Nip98Options& o, bool create) {
  auto body = read_body(o.body_file);
  if (!body) return fail(body.error());
  nostr::nip98::RequestTarget target{o.url, o.method, std::nullopt};
  if (*body) target.body = as_bytes(**body);
  if (create) {
    auto keys = ctx.load_keys();
    if (!keys) return fail(keys.error());
    write_stdout(nostr::nip98::create_token(*keys, target, now_or(o.now)) + "\n");
    return 0;
  }
  auto config = ctx.load_config();
  if (!config) return fail(config.error());
  auto token = read_stdin_trimmed();
  if (!token) return fail(token.error());
  auto event =
      nostr::nip98::verify_token(*token, target, now_or(o.now), config->get_int("nip98.max_age_seconds"));
  if (!event) return fail("rejected: " + event.error().message);
  write_stdout("authorized: " + nostr::nip19::encode_npub(event->pubkey) + "\n");
  return 0;
}

}  // namespace

void add_nip44_commands(CLI::App& app, CommandContext& ctx) {
  auto* nip44 = app.add_subcommand("nip44", "Encrypt and decrypt NIP-44 v2 payloads with the node's key");
  nip44->require_subcommand(1);
  static std::string to;
  static std::string from;
  static std::optional<std::string> message;
  auto* enc = nip44->add_subcommand("encrypt", "Encrypt stdin (byte for byte) or --message to a public key");
  enc->add_option("--to", to, "Recipient public key (npub or hex)")->required();
  enc->add_option("--message", message, "Plaintext (default: all of stdin)");
  enc->callback([&ctx] { ctx.exit_code = run_nip44(ctx, true, to, message); });
  auto* dec = nip44->add_subcommand("decrypt", "Decrypt a payload read from stdin, sent by a public key");
  dec->add_option("--from", from, "Sender public key (npub or hex)")->required();
  dec->callback([&ctx] { ctx.exit_code = run_nip44(ctx, false, from, std::nullopt); });
}

void add_nip19_commands(CLI::App& app, CommandContext& ctx) {
  auto* nip19 = app.add_subcommand("nip19", "Encode and decode NIP-19 bech32 entities");
  nip19->require_subcommand(1);
  static Nip19EncodeOptions opts;
  auto* enc =
      nip19->add_subcommand("encode", "Encode: npub|nsec|note HEX, or nprofile|nevent|naddr with options");
  enc->add_option("type", opts.type, "npub, nsec, note, nprofile, nevent or naddr")
      ->required()
      ->check(CLI::IsMember({"npub", "nsec", "note", "nprofile", "nevent", "naddr"}));
  enc->add_option("value", opts.value, "64 hex characters (npub, nsec, note)");
  enc->add_option("--pubkey", opts.pubkey, "Public key hex (nprofile, naddr)");
  enc->add_option("--id", opts.id, "Event id hex (nevent)");
  enc->add_option("--author", opts.author, "Author public key hex (nevent, optional)");
  enc->add_option("--identifier", opts.identifier, "The d tag (naddr)");
  enc->add_option("--kind", opts.kind, "Kind (naddr; optional for nevent)");
  enc->add_option("--relay", opts.relays, "Relay URL hint (repeatable)")->allow_extra_args(false);
  enc->callback([&ctx] {
    auto s = nip19_encode(opts);
    ctx.exit_code = s ? (write_stdout(*s + "\n"), 0) : fail(s.error());
  });
  static std::string text;
  auto* dec = nip19->add_subcommand("decode", "Decode any NIP-19 string; prints {\"type\",\"data\"} as JSON");
  dec->add_option("string", text, "npub1..., nsec1..., note1..., nprofile1..., nevent1... or naddr1...")
      ->required();
  dec->callback([&ctx] {
    auto entity = nostr::nip19::decode(text);
    ctx.exit_code = entity ? (write_stdout(decoded_json(*entity)), 0) : fail(entity.error());
  });
}

void add_nip98_commands(CLI::App& app, CommandContext& ctx) {
  auto* nip98 = app.add_subcommand("nip98", "Create and check NIP-98 HTTP Authorization tokens");
  nip98->require_subcommand(1);
  static Nip98Options opts;
  auto add_common = [](CLI::App* cmd) {
    cmd->add_option("--url", opts.url, "Absolute request URL, query included")->required();
    cmd->add_option("--method", opts.method, "HTTP method")->required();
    cmd->add_option("--body-file", opts.body_file,
                    "File holding the request body (adds/checks the payload hash)");
    cmd->add_option("--now", opts.now, "Unix time to use as now (default: the clock)");
  };
  auto* token =
      nip98->add_subcommand("token", "Print an Authorization header value signed with the node's key");
  add_common(token);
  token->callback([&ctx] { ctx.exit_code = run_nip98(ctx, opts, true); });
  auto* verify = nip98->add_subcommand("verify", "Check an Authorization header value read from stdin");
  add_common(verify);
  verify->callback([&ctx] { ctx.exit_code = run_nip98(ctx, opts, false); });
}

}  // namespace infernet::cli
