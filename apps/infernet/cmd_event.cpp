// infernet event sign|verify: make and check NIP-01 events by hand.
#include <chrono>
#include <cstdio>

#include <boost/json.hpp>

#include "apps/infernet/command_context.hpp"
#include "core/encoding.hpp"
#include "nostr/event.hpp"
#include "nostr/nip19.hpp"

namespace infernet::cli {
namespace {

// --tag accepts NAME=VALUE[;VALUE...] for the common case, or a JSON array of strings for anything with '='
// or
// ';' in it: --tag '["e","<id>","wss://relay"]'.
Result<nostr::Tag> parse_tag_option(const std::string& text) {
  if (!text.empty() && text.front() == '[') {
    std::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec || !v.is_array()) return make_error(ErrorCode::kInvalidInput, "--tag: not a JSON array: " + text);
    nostr::Tag tag;
    for (const auto& item : v.as_array()) {
      if (!item.is_string())
        return make_error(ErrorCode::kInvalidInput, "--tag: elements must be strings: " + text);
      tag.emplace_back(item.as_string().c_str(), item.as_string().size());
    }
    return tag;
  }
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return make_error(ErrorCode::kInvalidInput,
                      "--tag expects NAME=VALUE[;VALUE...] or a JSON array, got '" + text + "'");
  }
  nostr::Tag tag{text.substr(0, eq)};
  std::string rest = text.substr(eq + 1);
  size_t start = 0;
  for (;;) {
    size_t semi = rest.find(';', start);
    tag.push_back(rest.substr(start, semi - start));
    if (semi == std::string::npos) break;
    start = semi + 1;
  }
  return tag;
}

int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct SignOptions {
  std::optional<int64_t> kind;
  std::string content;
  std::vector<std::string> tags;
  std::optional<int64_t> created_at;
};

int run_sign(const CommandContext& ctx, const SignOptions& opts) {
  nostr::EventDraft draft;
  if (opts.kind) {
    if (*opts.kind < 0 || *opts.kind > nostr::kMaxKind) return fail("--kind must be from 0 to 65535");
    if (!is_valid_utf8(opts.content)) return fail("--content is not valid UTF-8");
    draft.kind = static_cast<uint32_t>(*opts.kind);
    draft.content = opts.content;
    for (const auto& t : opts.tags) {
      auto tag = parse_tag_option(t);
      if (!tag) return fail(tag.error());
      for (const auto& s : *tag) {
        if (!is_valid_utf8(s)) return fail("--tag is not valid UTF-8");
      }
      draft.tags.push_back(std::move(*tag));
    }
  } else {
    auto text = read_stdin_trimmed();
    if (!text) return fail(text.error());
    if (text->empty()) return fail("give --kind, or an event template as JSON on stdin");
    auto parsed = nostr::parse_event_draft(*text);
    if (!parsed) return fail(with_context(parsed.error(), "event template"));
    draft = std::move(*parsed);
  }
  if (opts.created_at) {
    if (*opts.created_at < 0) return fail("--created-at must be a non-negative Unix time");
    draft.created_at = *opts.created_at;
  } else if (draft.created_at == 0) {
    draft.created_at = now_unix();
  }
  auto keys = ctx.load_keys();
  if (!keys) return fail(keys.error());
  nostr::Event event = nostr::sign_event(std::move(draft), *keys);
  std::string out = nostr::to_json(event);
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int run_verify() {
  auto text = read_stdin_trimmed();
  if (!text) return fail(text.error());
  auto event = nostr::parse_event(*text);
  if (!event) return fail("invalid event: " + event.error().message);
  if (auto st = nostr::verify_event(*event); !st) return fail("invalid event: " + st.error().message);
  std::printf("valid: event %s (kind %u) by %s\n", hex_encode(event->id).c_str(), event->kind,
              nostr::nip19::encode_npub(event->pubkey).c_str());
  return 0;
}

}  // namespace

void add_event_commands(CLI::App& app, CommandContext& ctx) {
  auto* event = app.add_subcommand("event", "Sign and verify Nostr events (NIP-01)");
  event->require_subcommand(1);

  static SignOptions sign_opts;
  auto* sign = event->add_subcommand(
      "sign",
      "Sign an event with the node's key and print it as JSON. Give --kind/--content/--tag, or pipe a JSON "
      "template {\"kind\",\"content\",\"tags\",\"created_at\"} on stdin.");
  sign->add_option("--kind", sign_opts.kind, "Event kind (0-65535)");
  sign->add_option("--content", sign_opts.content, "Event content");
  sign->add_option("--tag", sign_opts.tags, "A tag: NAME=VALUE[;VALUE...] or a JSON array (repeatable)")
      ->allow_extra_args(false);  // one tag per --tag, and no CLI11 "[a,b]" list splitting
  sign->add_option("--created-at", sign_opts.created_at, "Unix time (default: now)");
  sign->callback([&ctx] { ctx.exit_code = run_sign(ctx, sign_opts); });

  auto* verify = event->add_subcommand(
      "verify",
      "Read an event as JSON from stdin and check its id and signature: exit 0 if valid, 1 with the reason");
  verify->callback([&ctx] { ctx.exit_code = run_verify(); });
}

}  // namespace infernet::cli
