// Prints bench/run-llama.sh's results: the llama engine called directly (bench/llama_engine_bench.cpp) beside
// llama.cpp's llama-bench, and the whole network (bench/llama_path_bench.mjs) beside the engine, with the
// ratios and the goals of the "Real inference" issue. DIR holds one engine-N.json, llama-bench-N.json and
// path-N.json per round N = 1, 2, ...: the three ran in turn in each round, so a machine whose speed drifts
// slows all of them alike. Figures are medians of every sample of every round; the per-round ratios show
// the spread.
//   node bench/llama_report.mjs DIR
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
const rounds = [];
for (let n = 1; existsSync(join(dir, `engine-${n}.json`)); n++) {
  const read = (name) => JSON.parse(readFileSync(join(dir, `${name}-${n}.json`), 'utf8'));
  const peer = read('llama-bench');
  // llama-bench reports one entry per test: -p is a prompt-only test, -n a generation-only one.
  rounds.push({
    ours: read('engine'),
    pp: peer.find((t) => t.n_prompt > 0 && t.n_gen === 0).samples_ts,
    tg: peer.find((t) => t.n_gen > 0 && t.n_prompt === 0).samples_ts,
    path: read('path'),
  });
}
if (rounds.length === 0) throw new Error(`no results in ${dir}`);

const median = (values) => {
  const v = [...values].sort((a, b) => a - b);
  const n = v.length;
  return n === 0 ? NaN : n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
};
const all = (f) => rounds.flatMap(f);
const fmt = (x, digits = 1) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const table = (header, rows) => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  console.log(line(header));
  for (const r of rows) console.log(line(r));
};
const met = (ok) => (ok ? 'met' : 'NOT met');
const perRound = (f) => rounds.map(f).map((x) => x.toFixed(2)).join(' / ');

const o = rounds[0].ours;
const reps = o.reps;
console.log(`model ${o.model}; ${o.engine}; ${o.threads} threads, batch ${o.batch}, context ${o.context}, ` +
  `flash attention off; ${rounds.length} rounds of ${reps} runs each (after warm-ups), medians of all`);

const oursPrefill = median(all((r) => r.ours.prefill_samples));
const oursDecode = median(all((r) => r.ours.decode_samples));
const peerPrefill = median(all((r) => r.pp));
const peerDecode = median(all((r) => r.tg));
console.log('\nEngine vs llama-bench (one job at a time)');
table(['measure', 'ours', 'llama-bench', 'ratio', 'goal >= 0.95x'], [
  [`prefill tok/s (${o.prompt_tokens}-token prompt)`, fmt(oursPrefill), fmt(peerPrefill),
    `${(oursPrefill / peerPrefill).toFixed(2)}x`, met(oursPrefill / peerPrefill >= 0.95)],
  [`decode tok/s (${o.gen_tokens} tokens)`, fmt(oursDecode), fmt(peerDecode),
    `${(oursDecode / peerDecode).toFixed(2)}x`, met(oursDecode / peerDecode >= 0.95)],
]);
console.log(`ratio per round: prefill ${perRound((r) => median(r.ours.prefill_samples) / median(r.pp))}; ` +
  `decode ${perRound((r) => median(r.ours.decode_samples) / median(r.tg))}`);

const prefillJobs = all((r) => r.path.prefill_jobs);
const decodeJobs = all((r) => r.path.decode_jobs);
const pathDecode = median(decodeJobs.map((j) => j.decode_tokens_per_second));
const pathPrefillTtft = median(prefillJobs.map((j) => j.ttft_ms));
const pathDecodeTtft = median(decodeJobs.map((j) => j.ttft_ms));
const engPrefillTtft = median(all((r) => r.ours.prefill_ttft_samples));
const engDecodeTtft = median(all((r) => r.ours.decode_ttft_samples));
const decodeRatio = pathDecode / oursDecode;
// A prefill job ends at its first token, so the provider's engine time for it (from its log) is that job's
// time to first token inside the provider: the rest of the client's wait is what the network added.
const providerPrefill = median(prefillJobs.map((j) => j.provider_engine_ms));
const sameJobAdded = median(prefillJobs.map((j) => j.ttft_ms - j.provider_engine_ms));
const added = (a, b) => `${a - b >= 0 ? '+' : ''}${fmt(a - b)} ms`;
console.log('\nFull path (REST submit, relay, provider, WebSocket stream) vs the engine called directly');
table(['measure', 'full path', 'engine', 'ratio / added', 'goal'], [
  [`decode tok/s (${o.gen_tokens} tokens)`, fmt(pathDecode), fmt(oursDecode), `${decodeRatio.toFixed(2)}x`,
    `>= 0.9x: ${met(decodeRatio >= 0.9)}`],
  [`time to first token, ${o.prompt_tokens}-token prompt (ms)`, fmt(pathPrefillTtft), fmt(engPrefillTtft),
    added(pathPrefillTtft, engPrefillTtft), `< +20 ms: ${met(pathPrefillTtft - engPrefillTtft < 20)}`],
  [`  the same, against the provider's engine time in each job`, fmt(pathPrefillTtft), fmt(providerPrefill),
    added(pathPrefillTtft, pathPrefillTtft - sameJobAdded), `< +20 ms: ${met(sameJobAdded < 20)}`],
  [`time to first token, ${o.decode_input_tokens}-token prompt (ms)`, fmt(pathDecodeTtft), fmt(engDecodeTtft),
    added(pathDecodeTtft, engDecodeTtft), `< +20 ms: ${met(pathDecodeTtft - engDecodeTtft < 20)}`],
]);
const roundMedian = (r, kind, key) => median(r.path[kind].map((j) => j[key]));
console.log(`per round: decode ratio ${perRound((r) => roundMedian(r, 'decode_jobs', 'decode_tokens_per_second') /
  median(r.ours.decode_samples))}; added ms, long prompt ${perRound((r) => roundMedian(r, 'prefill_jobs', 'ttft_ms') -
  median(r.ours.prefill_ttft_samples))}, short prompt ${perRound((r) => roundMedian(r, 'decode_jobs', 'ttft_ms') -
  median(r.ours.decode_ttft_samples))}`);

// Where the time goes, from the consumer's own event timestamps (ms after the job's "submitted" event).
const step = (jobs, key) => median(jobs.map((j) => j.consumer_ms[key]).filter((x) => x !== null));
const where = (name, jobs) => console.log(`${name}: POST answered ${fmt(median(jobs.map((j) => j.post_ms)))} ms; ` +
  `the consumer recorded assigned +${fmt(step(jobs, 'assigned'), 0)}, running +${fmt(step(jobs, 'running'), 0)}, ` +
  `first progress +${fmt(step(jobs, 'first_progress'), 0)}, result +${fmt(step(jobs, 'result'), 0)} ms`);
console.log('\nmedians per job:');
where(`  prefill job (max_tokens 1)`, prefillJobs);
where(`  decode job (max_tokens ${o.gen_tokens})`, decodeJobs);
console.log(`  decode job: the client had the last piece ` +
  `${fmt(median(decodeJobs.map((j) => j.last_piece_ms - j.provider_engine_ms)))} ms more than the provider's engine ran`);
console.log(`  decode job: the first piece carried ${fmt(median(decodeJobs.map((j) => j.first_piece_tokens)), 0)} ` +
  `tokens; ${fmt(median(decodeJobs.map((j) => j.progress_events)), 0)} progress events; the result carried the last ` +
  `${fmt(median(decodeJobs.map((j) => j.tokens_from_result)), 0)} tokens`);
