// The OpenAI streaming path, as a user's program sees it: the official `openai` npm client (the one users
// use, unmodified but for its base URL and key) sends the same streaming completion to Infernet's consumer
// (/v1, each request a job sent over the relay to a provider running the llama engine) and to llama.cpp's
// llama-server on the same model (bench/run-openai.sh starts both). The two take turns, the order swapping
// every round, so a machine whose speed drifts slows both alike; the first WARMUP rounds are discarded.
// Per request, all client-side (performance.now() around the client's async iterator):
//   ttft     create() called -> first chunk with non-empty text;
//   decode   (completion tokens - 1) / (last text chunk - first text chunk), as the issue defines it, and
//            (completion tokens - tokens in the first chunk) / the same span, which counts only tokens
//            generated inside the span when a chunk carries several (Infernet's provider batches its
//            progress, docs/protocol.md; the first chunk's token count comes from the consumer's job events);
//   total    create() called -> the stream's end.
// It also records each answer's text, token counts, chunks and the widest gap between text chunks; the
// servers' own figures: llama-server's timings (its last chunk carries them) and, for Infernet, the
// provider's engine seconds from its log (PROVIDER_LOG, at level info) and the consumer's timestamps of the
// job's events (submitted, running, first progress, result), which show where the network's time goes.
//   node bench/openai_bench.mjs --infernet URL --key KEY --llama URL --model NAME [--api chat|text]
//        [--rounds N] [--warmup N] [--max-tokens N] [--provider-log PROVIDER_LOG]
// Prints one JSON object; bench/openai_report.mjs turns it into the table.
import OpenAI from 'openai';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    infernet: { type: 'string' },
    key: { type: 'string' },
    llama: { type: 'string' },
    model: { type: 'string' },
    api: { type: 'string', default: 'chat' },
    rounds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '2' },
    'max-tokens': { type: 'string', default: '128' },
    'provider-log': { type: 'string' },
  },
});
const usage = 'usage: node bench/openai_bench.mjs --infernet URL --key KEY --llama URL --model NAME ' +
  '[--api chat|text] [--rounds N] [--warmup N] [--max-tokens N] [--provider-log FILE]\n';
const ROUNDS = Number(opt.rounds);
const WARMUP = Number(opt.warmup);
const MAX_TOKENS = Number(opt['max-tokens']);
if (!opt.infernet || !opt.key || !opt.llama || !opt.model || !['chat', 'text'].includes(opt.api) ||
    !(ROUNDS >= 1 && ROUNDS <= 1000) || !(WARMUP >= 0 && WARMUP <= 100) || !(MAX_TOKENS >= 2 && MAX_TOKENS <= 4096)) {
  process.stderr.write(usage);
  process.exit(2);
}
const REQUEST_TIMEOUT_MS = 120_000;

// The prompt: ordinary English (the same prose as bench/llama_engine_bench.cpp, twice), about 400 tokens
// with the bench model's tokenizer. A chat wraps it in a system and a user message; both servers render
// them with the model's ChatML template.
const PROSE =
  'The relay keeps every signed note it is given and hands each one to the readers who asked for it. A ' +
  'provider announces the models it serves, what it charges and how many jobs it can run at once; a ' +
  'consumer picks one, sends the prompt sealed to that provider alone, and reads the answer as it is ' +
  'written. Nobody in the middle can read the work or change it, and a job that stalls moves to another ' +
  'machine without the user doing anything. ';
const PROMPT = `${PROSE}${PROSE}Tell the story of one job, from the prompt to the last word:`;
const MESSAGES = [
  { role: 'system', content: 'You explain networks plainly.' },
  { role: 'user', content: PROMPT },
];

const systems = {
  infernet: new OpenAI({ baseURL: `${opt.infernet}/v1`, apiKey: opt.key, maxRetries: 0, timeout: REQUEST_TIMEOUT_MS }),
  'llama-server': new OpenAI({ baseURL: `${opt.llama}/v1`, apiKey: 'none', maxRetries: 0, timeout: REQUEST_TIMEOUT_MS }),
};

// What the consumer recorded of an Infernet job: the tokens its first streamed piece carried (each progress
// event counts the tokens streamed so far; null when the result carried everything) and the times (ms after
// "submitted", the consumer's clock) of its steps.
async function infernetJob(jobId) {
  const res = await fetch(`${opt.infernet}/api/v1/jobs/${jobId}/events`, {
    headers: { authorization: `Bearer ${opt.key}` },
  });
  if (!res.ok) throw new Error(`GET /api/v1/jobs/${jobId}/events: ${res.status}`);
  const { events } = await res.json();
  const first = events.find((e) => e.type === 'progress' && e.data.text);
  if (!first) throw new Error(`job ${jobId}: no progress event`);
  const at = (pred) => {
    const e = events.find(pred);
    return e ? e.at - events[0].at : null;
  };
  return {
    first_tokens: first.data.from_result ? null : first.data.tokens,
    steps: {
      running: at((e) => e.type === 'state' && e.data.state === 'running'),
      first_progress: at((e) => e.type === 'progress'),
      result: at((e) => e.type === 'result'),
    },
  };
}

// The provider's engine seconds for a job (prefill and decode), from its "provider: job ID attempt N
// completed (T tokens, S s, ...)" line, logged just after the result is published.
async function providerEngineMs(jobId) {
  if (!opt['provider-log']) return null;
  const pattern = new RegExp(`job ${jobId} attempt \\d+ completed \\(\\d+ tokens, ([0-9.]+) s`);
  for (let i = 0; i < 100; i++) {
    const m = readFileSync(opt['provider-log'], 'utf8').match(pattern);
    if (m) return Number(m[1]) * 1000;
    await new Promise((r) => setTimeout(r, 10));
  }
  return null;
}

async function request(name) {
  const client = systems[name];
  const body = { model: opt.model, max_tokens: MAX_TOKENS, temperature: 0, stream: true,
    stream_options: { include_usage: true } };
  const t0 = performance.now();
  const stream = opt.api === 'chat'
    ? await client.chat.completions.create({ ...body, messages: MESSAGES })
    : await client.completions.create({ ...body, prompt: PROMPT });
  let text = '';
  let first = null;
  let last = null;
  let chunks = 0;
  let widestGap = 0;
  let usage = null;
  let jobId = null;
  let timings = null;
  for await (const chunk of stream) {
    const now = performance.now() - t0;
    if (chunk.usage) usage = chunk.usage;
    if (chunk.infernet) jobId = chunk.infernet.job_id;
    if (chunk.timings) timings = chunk.timings;  // llama-server's own figures, on its last chunks
    const piece = chunk.choices?.[0] && (opt.api === 'chat' ? chunk.choices[0].delta?.content : chunk.choices[0].text);
    if (!piece) continue;
    if (first === null) first = now;
    else widestGap = Math.max(widestGap, now - last);
    last = now;
    chunks += 1;
    text += piece;
  }
  const total = performance.now() - t0;
  if (!usage) throw new Error(`${name}: no usage chunk`);
  if (first === null) throw new Error(`${name}: no text streamed`);
  const tokens = usage.completion_tokens;
  // llama-server streams one token per chunk; Infernet's consumer says how many the first piece held.
  const job = name === 'infernet' ? await infernetJob(jobId) : null;
  const firstTokens = job ? job.first_tokens ?? tokens : 1;
  const span = (last - first) / 1000;
  return {
    system: name,
    job_id: jobId,
    ttft_ms: first,
    last_ms: last,
    total_ms: total,
    prompt_tokens: usage.prompt_tokens,
    completion_tokens: tokens,
    first_chunk_tokens: firstTokens,
    decode_tokens_per_second: span > 0 ? (tokens - 1) / span : 0,
    decode_after_first_chunk: span > 0 ? (tokens - firstTokens) / span : 0,
    text_chunks: chunks,
    widest_gap_ms: widestGap,
    // The engine's own time for the whole answer (prefill and decode), as each server measured it.
    engine_ms: job ? await providerEngineMs(jobId) : timings && timings.prompt_ms + timings.predicted_ms,
    consumer_steps_ms: job && job.steps,
    server: timings && {
      prompt_n: timings.prompt_n,
      prompt_ms: timings.prompt_ms,
      predicted_n: timings.predicted_n,
      predicted_per_second: timings.predicted_per_second,
    },
    text,
  };
}

const results = [];
for (let round = 0; round < WARMUP + ROUNDS; round++) {
  const order = round % 2 === 0 ? ['infernet', 'llama-server'] : ['llama-server', 'infernet'];
  for (const name of order) {
    const r = await request(name);
    r.round = round - WARMUP;  // negative: a warm-up round
    results.push(r);
    process.stderr.write(`round ${r.round} ${name}: ttft ${r.ttft_ms.toFixed(1)} ms, ` +
      `${r.decode_tokens_per_second.toFixed(1)} tok/s, ${r.completion_tokens} tokens in ${r.text_chunks} chunks\n`);
  }
}
process.stdout.write(JSON.stringify({
  api: opt.api === 'chat' ? '/v1/chat/completions' : '/v1/completions',
  model: opt.model,
  max_tokens: MAX_TOKENS,
  rounds: ROUNDS,
  warmup: WARMUP,
  requests: results,
}) + '\n');
