// Prints bench/run-openai.sh's results: Infernet's OpenAI-compatible streaming path beside llama.cpp's
// llama-server on the same model, from the requests bench/openai_bench.mjs measured (DIR/openai.json) and
// the run's settings (DIR/setup.json). Medians and p90 of every measured request; for a rate, p90 is the
// rate that 90% of requests reached or beat (the slow tail), for a time the one 90% stayed under. The
// ratio per round pairs the two requests of the same round, which ran back to back.
//   node bench/openai_report.mjs DIR
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node bench/openai_report.mjs DIR\n');
  process.exit(2);
}
const setup = JSON.parse(readFileSync(join(dir, 'setup.json'), 'utf8'));
const run = JSON.parse(readFileSync(join(dir, 'openai.json'), 'utf8'));
const measured = run.requests.filter((r) => r.round >= 0);
const of = (system) => measured.filter((r) => r.system === system);
// What each request spent outside its engine: the client's whole wait less the engine's own time.
for (const r of measured) r.outside_engine_ms = r.engine_ms == null ? null : r.total_ms - r.engine_ms;
const ours = of('infernet');
const peer = of('llama-server');
if (ours.length === 0 || peer.length === 0) throw new Error(`no measured requests in ${dir}`);

const quantile = (values, q) => {
  const v = values.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const at = (v.length - 1) * q;
  const lo = Math.floor(at);
  return v[lo] + (v[Math.min(lo + 1, v.length - 1)] - v[lo]) * (at - lo);
};
const median = (values) => quantile(values, 0.5);
const fmt = (x, digits = 1) => (Number.isNaN(x) ? '-' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));
const table = (header, rows) => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  console.log(line(header));
  for (const r of rows) console.log(line(r));
};

console.log(`model ${run.model}; ${run.api}, streamed, include_usage; greedy (temperature 0), max_tokens ` +
  `${run.max_tokens}; ${run.rounds} rounds after ${run.warmup} warm-up rounds, the order swapping every round`);
console.log(`both: ${setup.threads} threads, context ${setup.context}, batch and micro-batch ${setup.batch}, ` +
  `flash attention ${setup.flash_attn ? 'on' : 'off'}, one slot, no prompt cache; client: openai ${setup.client}`);
console.log(`machine: ${setup.machine}; load before ${setup.load_before}, after ${setup.load_after}`);

// A rate's slow tail is its 10th percentile; a time's is its 90th.
const rate = (key) => (rs) => [median(rs.map((r) => r[key])), quantile(rs.map((r) => r[key]), 0.1)];
const time = (key) => (rs) => [median(rs.map((r) => r[key])), quantile(rs.map((r) => r[key]), 0.9)];
const rounds = [...new Set(measured.map((r) => r.round))];
const pair = (round) => [ours.find((r) => r.round === round), peer.find((r) => r.round === round)];
const perRound = (key, f) => rounds.map(pair).filter(([a, b]) => a && b).map(([a, b]) => f(a[key], b[key]));

const rows = [];
const decodeRatio = median(ours.map((r) => r.decode_tokens_per_second)) / median(peer.map((r) => r.decode_tokens_per_second));
const add = (name, stat, key, compare) => {
  const [om, op] = stat(key)(ours);
  const [pm, pp] = stat(key)(peer);
  rows.push([name, fmt(om), fmt(op), fmt(pm), fmt(pp), compare(om, pm),
    compare === ratio ? `${fmt(median(perRound(key, (a, b) => a / b)), 2)}x` : diff(median(perRound(key, (a, b) => a - b)), 0)]);
};
const ratio = (a, b) => `${fmt(a / b, 2)}x`;
const diff = (a, b) => `${a - b >= 0 ? '+' : ''}${fmt(a - b)} ms`;
add('decode tok/s, (tokens - 1) / (last - first)', rate, 'decode_tokens_per_second', ratio);
add('decode tok/s, tokens after the first chunk', rate, 'decode_after_first_chunk', ratio);
add('time to first token, ms', time, 'ttft_ms', diff);
add('total time, ms', time, 'total_ms', diff);
add('widest gap between text chunks, ms', time, 'widest_gap_ms', diff);
add('engine time for the answer (its own clock), ms', time, 'engine_ms', diff);
add('total time less the engine time, ms', time, 'outside_engine_ms', diff);
console.log('');
table(['measure (client side)', 'infernet', 'p90', 'llama-server', 'p90', 'infernet vs llama-server', 'paired per round'], rows);

const same = (rs, key) => new Set(rs.map((r) => r[key])).size === 1;
const texts = new Set(measured.map((r) => r.text));
console.log(`\nprompt tokens: infernet ${[...new Set(ours.map((r) => r.prompt_tokens))].join('/')}, ` +
  `llama-server ${[...new Set(peer.map((r) => r.prompt_tokens))].join('/')}; completion tokens: infernet ` +
  `${[...new Set(ours.map((r) => r.completion_tokens))].join('/')}, llama-server ` +
  `${[...new Set(peer.map((r) => r.completion_tokens))].join('/')}; ` +
  (texts.size === 1 ? 'every answer the same text' : `${texts.size} different texts`) +
  (same(ours, 'text') && same(peer, 'text') && texts.size === 2 ? ' (each system its own, the same every round)' : ''));
console.log(`text chunks per answer: infernet ${fmt(median(ours.map((r) => r.text_chunks)), 0)} (first chunk ` +
  `${fmt(median(ours.map((r) => r.first_chunk_tokens)), 0)} token(s)), llama-server ` +
  `${fmt(median(peer.map((r) => r.text_chunks)), 0)}`);
const server = peer.map((r) => r.server).filter(Boolean);
if (server.length) {
  console.log(`llama-server's own timings: prompt ${fmt(median(server.map((s) => s.prompt_n)), 0)} tokens in ` +
    `${fmt(median(server.map((s) => s.prompt_ms)))} ms, decode ${fmt(median(server.map((s) => s.predicted_per_second)))} tok/s`);
}
const step = (key) => fmt(median(ours.map((r) => r.consumer_steps_ms?.[key])), 1);
console.log(`infernet's consumer recorded (median ms after submitting): running +${step('running')}, first ` +
  `progress +${step('first_progress')}, result +${step('result')}`);
console.log(`\ngoal: decode within 10% of llama-server's (>= 0.90x): ${decodeRatio >= 0.9 ? 'met' : 'NOT met'} ` +
  `(${fmt(decodeRatio, 2)}x); time to first token ${diff(median(ours.map((r) => r.ttft_ms)), median(peer.map((r) => r.ttft_ms)))}, ` +
  'the engines\' prefill included; the network hop\'s own share (total less engine time) ' +
  diff(median(ours.map((r) => r.outside_engine_ms)), median(peer.map((r) => r.outside_engine_ms))));
