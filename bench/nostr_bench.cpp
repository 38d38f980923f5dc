// Event verification, signing and NIP-44 at the speed the relay needs, measured beside the raw libsecp256k1
// calls they wrap. bench/run.sh runs this and nostr-tools (bench/nostr_tools_peer.mjs) on the same events and
// prints the ratios.
#include <benchmark/benchmark.h>

#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>

#include <string>
#include <vector>

#include "core/random.hpp"
#include "nostr/event.hpp"
#include "nostr/nip44.hpp"

namespace {

using namespace infernet;
using namespace infernet::nostr;

constexpr size_t kEvents = 256;

// A realistic relay mix: 256 distinct authors, short notes with a few tags, so no cache makes it look better.
struct Corpus {
  std::vector<Keypair> keys;
  std::vector<Event> events;
  std::vector<std::string> json;
  Corpus() {
    for (size_t i = 0; i < kEvents; ++i) {
      keys.push_back(Keypair::generate());
      EventDraft d{
          1700000000 + static_cast<int64_t>(i),
          1,
          {{"e", std::string(64, 'a'), "wss://relay.example"}, {"p", std::string(64, 'b')}, {"t", "ai"}},
          "A job result streamed over Nostr, number " + std::to_string(i) +
              ", with enough text to look like a real note: the quick brown fox jumps over the lazy dog."};
      events.push_back(sign_event(d, keys.back()));
      json.push_back(to_json(events.back()));
    }
  }
};

const Corpus& corpus() {
  static const Corpus c;
  return c;
}

secp256k1_context* raw_context() {
  static secp256k1_context* ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
  return ctx;
}

// The floor: parse the author's x-only key and verify the signature over the 32-byte id. Nothing else.
void BM_RawVerify(benchmark::State& state) {
  const auto& c = corpus();
  size_t i = 0;
  for (auto _ : state) {
    const Event& e = c.events[i++ % kEvents];
    secp256k1_xonly_pubkey pk;
    int ok = secp256k1_xonly_pubkey_parse(raw_context(), &pk, e.pubkey.data()) &&
             secp256k1_schnorrsig_verify(raw_context(), e.sig.data(), e.id.data(), 32, &pk);
    benchmark::DoNotOptimize(ok);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawVerify);

// What the relay does per incoming event: JSON text in, parsed, id recomputed, signature verified.
void BM_EventVerifyFromJson(benchmark::State& state) {
  const auto& c = corpus();
  size_t i = 0;
  for (auto _ : state) {
    auto e = parse_event(c.json[i++ % kEvents]);
    bool ok = e && verify_event(*e);
    if (!ok) state.SkipWithError("verification failed");
    benchmark::DoNotOptimize(ok);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EventVerifyFromJson);

void BM_EventParseOnly(benchmark::State& state) {
  const auto& c = corpus();
  size_t i = 0;
  for (auto _ : state) {
    auto e = parse_event(c.json[i++ % kEvents]);
    benchmark::DoNotOptimize(e);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EventParseOnly);

// The floor for signing: one schnorrsig_sign32 with a prepared keypair and fresh auxiliary randomness.
void BM_RawSign(benchmark::State& state) {
  const auto& c = corpus();
  secp256k1_keypair kp;
  if (!secp256k1_keypair_create(raw_context(), &kp, c.keys[0].secret().data()))
    state.SkipWithError("keypair");
  std::array<uint8_t, 32> aux{};
  unsigned char sig[64];
  size_t i = 0;
  for (auto _ : state) {
    fill_random(aux);
    int ok =
        secp256k1_schnorrsig_sign32(raw_context(), sig, c.events[i++ % kEvents].id.data(), &kp, aux.data());
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(sig);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawSign);

// What a node does to publish: draft in, canonical serialization, id, signature, JSON text out.
void BM_EventSignToJson(benchmark::State& state) {
  const auto& c = corpus();
  const Keypair& keys = c.keys[0];
  size_t i = 0;
  for (auto _ : state) {
    const Event& src = c.events[i++ % kEvents];
    Event e = sign_event({src.created_at, src.kind, src.tags, src.content}, keys);
    std::string json = to_json(e);
    benchmark::DoNotOptimize(json);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EventSignToJson);

// The parts of signing that are ours: serialization and hashing (compute_id), and printing (to_json).
void BM_EventComputeId(benchmark::State& state) {
  const auto& c = corpus();
  size_t i = 0;
  for (auto _ : state)
    benchmark::DoNotOptimize(compute_id(c.events[i++ % kEvents]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EventComputeId);

void BM_EventToJson(benchmark::State& state) {
  const auto& c = corpus();
  size_t i = 0;
  for (auto _ : state)
    benchmark::DoNotOptimize(to_json(c.events[i++ % kEvents]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EventToJson);

const std::string& kilobyte() {
  static const std::string s = [] {
    std::string t;
    while (t.size() < 1024)
      t += "Infernet job payload, encrypted to one provider. ";
    t.resize(1024);
    return t;
  }();
  return s;
}

nip44::ConversationKey bench_conversation_key() {
  const auto& c = corpus();
  return nip44::conversation_key(c.keys[0], c.keys[1].public_key());
}

void BM_Nip44Encrypt1K(benchmark::State& state) {
  auto key = bench_conversation_key();
  for (auto _ : state) {
    auto p = nip44::encrypt(kilobyte(), key);
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Nip44Encrypt1K);

void BM_Nip44Decrypt1K(benchmark::State& state) {
  auto key = bench_conversation_key();
  std::string payload = *nip44::encrypt(kilobyte(), key);
  for (auto _ : state) {
    auto p = nip44::decrypt(payload, key);
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Nip44Decrypt1K);

}  // namespace

BENCHMARK_MAIN();
