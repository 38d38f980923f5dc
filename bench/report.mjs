// Prints ours beside the peers with ratios, from Google Benchmark's JSON (argv[2]) and the peer's (argv[3]).
import { readFileSync } from 'node:fs';

// Medians of Google Benchmark's repetitions, so one noisy repetition does not decide a ratio.
const ours = Object.fromEntries(JSON.parse(readFileSync(process.argv[2], 'utf8')).benchmarks
  .filter((b) => b.aggregate_name === 'median').map((b) => [b.run_name, b.items_per_second]));
const peer = JSON.parse(readFileSync(process.argv[3], 'utf8'));

const rows = [
  ['event verify (JSON in)', 'BM_EventVerifyFromJson', [['raw libsecp256k1 parse-key+verify', ours.BM_RawVerify, 0.9],
    ['nostr-tools pure JS', peer.verify_pure], ['nostr-tools wasm', peer.verify_wasm, 5]]],
  ['event sign (JSON out)', 'BM_EventSignToJson', [['raw libsecp256k1 sign32', ours.BM_RawSign, 0.9],
    ['nostr-tools pure JS', peer.sign_pure], ['nostr-tools wasm', peer.sign_wasm, 5]]],
  ['NIP-44 encrypt 1 KB', 'BM_Nip44Encrypt1K', [['nostr-tools', peer.nip44_encrypt_1k, 5]]],
  ['NIP-44 decrypt 1 KB', 'BM_Nip44Decrypt1K', [['nostr-tools', peer.nip44_decrypt_1k, 5]]],
];
const fmt = (n) => Math.round(n).toLocaleString('en-US').padStart(10);
console.log('operation                 infernet/s   peer                                  peer/s   ratio  goal');
for (const [label, name, peers] of rows) {
  for (const [peerName, peerRate, goal] of peers) {
    const ratio = ours[name] / peerRate;
    const verdict = goal === undefined ? '' : `${ratio >= goal ? 'met' : 'MISSED'} (>= ${goal}x)`;
    console.log(`${label.padEnd(24)} ${fmt(ours[name])}   ${peerName.padEnd(34)} ${fmt(peerRate)}  ${ratio.toFixed(2).padStart(6)}x  ${verdict}`);
  }
}
console.log(`parse only (JSON -> Event): ${fmt(ours.BM_EventParseOnly)}/s`);
