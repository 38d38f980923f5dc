// infernet key new|show|import: the node's Nostr identity.
#include <cstdio>

#include "apps/infernet/command_context.hpp"
#include "nostr/identity.hpp"
#include "nostr/nip19.hpp"

namespace infernet::cli {
namespace {

void print_identity(const nostr::Keypair& keys, const std::string& path) {
  std::printf("npub    %s\n", nostr::nip19::encode_npub(keys.public_key().bytes()).c_str());
  std::printf("pubkey  %s\n", keys.public_key().hex().c_str());
  std::printf("file    %s\n", path.c_str());
}

int store_and_print(const CommandContext& ctx, const nostr::Keypair& keys, bool force) {
  auto config = ctx.load_config();
  if (!config) return fail(config.error());
  std::string path = config->key_file();
  if (auto st = nostr::write_key_file(path, keys, force); !st) {
    if (st.error().code == ErrorCode::kAlreadyExists) {
      return fail(st.error().message + "; pass --force to replace it (the old identity is lost)");
    }
    return fail(st.error());
  }
  print_identity(keys, path);
  return 0;
}

}  // namespace

void add_key_commands(CLI::App& app, CommandContext& ctx) {
  auto* key = app.add_subcommand("key", "Manage this node's Nostr identity (secret key file, mode 0600)");
  key->require_subcommand(1);

  auto* create = key->add_subcommand("new", "Generate a key from the OS CSPRNG and write the key file");
  static bool new_force = false;
  create->add_flag("--force", new_force, "Replace an existing key file");
  create->callback([&ctx] { ctx.exit_code = store_and_print(ctx, nostr::Keypair::generate(), new_force); });

  auto* show = key->add_subcommand("show", "Print the public key (npub and hex) of the key file");
  static std::string field;
  show->add_option("--field", field, "Print only one value: npub, hex or nsec (nsec reveals the secret)")
      ->check(CLI::IsMember({"npub", "hex", "nsec"}));
  show->callback([&ctx] {
    auto config = ctx.load_config();
    if (!config) {
      ctx.exit_code = fail(config.error());
      return;
    }
    auto keys = nostr::read_key_file(config->key_file());
    if (!keys) {
      ctx.exit_code = fail(keys.error());
      return;
    }
    if (field == "npub") {
      std::printf("%s\n", nostr::nip19::encode_npub(keys->public_key().bytes()).c_str());
    } else if (field == "hex") {
      std::printf("%s\n", keys->public_key().hex().c_str());
    } else if (field == "nsec") {
      std::printf("%s\n", nostr::nip19::encode_nsec(keys->secret()).c_str());
    } else {
      print_identity(*keys, config->key_file());
    }
  });

  auto* import = key->add_subcommand(
      "import", "Read a secret key (nsec or 64 hex characters) from stdin and write the key file");
  static bool import_force = false;
  import->add_flag("--force", import_force, "Replace an existing key file");
  import->callback([&ctx] {
    // The secret comes from stdin, never from an argument, so it stays out of shell history and `ps`.
    auto text = read_stdin_trimmed();
  if (!text) {
    ctx.exit_code = fail(text.error());
    return;
  }
  auto keys = nostr::parse_secret_key(*text);
  if (!keys) {
    ctx.exit_code = fail(keys.error());
    return;
  }
  ctx.exit_code = store_and_print(ctx, *keys, import_force);
});
}  // namespace infernet::cli

}  // namespace infernet::cli
