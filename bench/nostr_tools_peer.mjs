// The peer for bench/nostr_bench.cpp: nostr-tools (npm) doing the same work on the same kind of events, in its
// pure-JS build and its wasm build (nostr-wasm). Prints one JSON object: {name: operations per second}.
import { generateSecretKey, getPublicKey, finalizeEvent as finalizePure, verifyEvent as verifyPure } from 'nostr-tools/pure';
import { setNostrWasm, finalizeEvent as finalizeWasm, verifyEvent as verifyWasm } from 'nostr-tools/wasm';
import { initNostrWasm } from 'nostr-wasm';
import * as nip44 from 'nostr-tools/nip44';

setNostrWasm(await initNostrWasm());

const N = 256;
const events = [];
for (let i = 0; i < N; i++) {
  const sk = generateSecretKey();
  events.push(JSON.stringify(finalizePure({
    kind: 1,
    created_at: 1700000000 + i,
    tags: [['e', 'a'.repeat(64), 'wss://relay.example'], ['p', 'b'.repeat(64)], ['t', 'ai']],
    content: `A job result streamed over Nostr, number ${i}, with enough text to look like a real note: the quick brown fox jumps over the lazy dog.`,
  }, sk)));
}

// Runs fn repeatedly for about `seconds` and returns operations per second.
function measure(fn, seconds = 2) {
  for (let i = 0; i < 50; i++) fn(i); // warm up the JIT
  let ops = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < deadline) {
    for (let k = 0; k < 16; k++) fn(ops++);
    now = process.hrtime.bigint();
  }
  return ops / (Number(now - start) / 1e9);
}

const result = {};
// Each verification parses the JSON text afresh, as our side does (and so nostr-tools' verified cache is cold).
result.verify_pure = measure((i) => { if (!verifyPure(JSON.parse(events[i % N]))) throw new Error('verify'); });
result.verify_wasm = measure((i) => { if (!verifyWasm(JSON.parse(events[i % N]))) throw new Error('verify'); });
const sk = generateSecretKey();
const templates = events.map((e) => { const { kind, created_at, tags, content } = JSON.parse(e); return { kind, created_at, tags, content }; });
result.sign_pure = measure((i) => JSON.stringify(finalizePure({ ...templates[i % N] }, sk)));
result.sign_wasm = measure((i) => JSON.stringify(finalizeWasm({ ...templates[i % N] }, sk)));
const key = nip44.v2.utils.getConversationKey(sk, getPublicKey(generateSecretKey()));
let kb = '';
while (kb.length < 1024) kb += 'Infernet job payload, encrypted to one provider. ';
kb = kb.slice(0, 1024);
result.nip44_encrypt_1k = measure(() => nip44.v2.encrypt(kb, key));
const payload = nip44.v2.encrypt(kb, key);
result.nip44_decrypt_1k = measure(() => nip44.v2.decrypt(payload, key));
process.stdout.write(JSON.stringify(result) + '\n');
