// The whole network on loopback, as a user's program sees it: a job goes in through the consumer's REST API
// (POST /api/v1/jobs) and its text comes back over the consumer's WebSocket job stream, after the consumer
// has sent it through the relay to a provider running the llama engine (bench/run-llama.sh starts them). The
// prompts, token counts and repetitions are those of bench/llama_engine_bench.cpp, whose JSON this reads, so
// the two are comparable:
//   ttft     POST sent -> first progress text on the stream, for the prefill job (the 512-token prompt,
//            max_tokens 1) and the decode job (the short prompt);
//   decode   output tokens after those of the first progress piece / (last piece - first piece), both as the
//            client received them: the last piece is the part the result carried (docs/protocol.md), so it
//            arrives when the whole answer has reached the consumer.
// Each job also records the consumer's own timestamps (`at`, ms) of its events and, from the provider's log
// (at level info it logs each result with the engine's seconds), the provider's engine time, so that what the
// network adds is measured within the same job rather than against another process's engine.
//   node bench/llama_path_bench.mjs API_URL ENGINE_JSON [REPS] [WARMUP=1] [PROVIDER_LOG]
// REPS defaults to the engine's; WARMUP 0 skips the warm-up jobs (for a provider that has run jobs already).
// Prints one JSON object.
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

const [apiUrl, engineFile, repsArg, warmupArg, providerLog] = process.argv.slice(2);
if (!apiUrl || !engineFile) {
  process.stderr.write('usage: node bench/llama_path_bench.mjs API_URL ENGINE_JSON [REPS] [WARMUP=1] [PROVIDER_LOG]\n');
  process.exit(2);
}
const engine = JSON.parse(readFileSync(engineFile, 'utf8'));
const REPS = Number(repsArg ?? engine.reps);
const WARMUP = warmupArg !== '0';
const JOB_TIMEOUT_MS = 120_000;

const median = (values) => {
  if (values.length === 0) return 0;
  const v = [...values].sort((a, b) => a - b);
  const n = v.length;
  return n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
};

async function api(method, path, body) {
  const res = await fetch(apiUrl + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function waitForModel() {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const { providers } = await api('GET', '/api/v1/providers');
    if (providers.some((p) => p.alive && p.models.some((m) => m.name === engine.model))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no live provider announced ${engine.model}`);
}

// The engine's seconds for a job, from the provider's "provider: job ID attempt N completed (T tokens, S s, ...)"
// line; the line follows the result's publication, so it may lag the stream's end by a moment.
async function providerEngineMs(id) {
  if (!providerLog) return null;
  const pattern = new RegExp(`job ${id} attempt \\d+ completed \\(\\d+ tokens, ([0-9.]+) s`);
  for (let i = 0; i < 100; i++) {
    const m = readFileSync(providerLog, 'utf8').match(pattern);
    if (m) return Number(m[1]) * 1000;
    await new Promise((r) => setTimeout(r, 10));
  }
  return null;
}

// One job: submit, then follow its stream to the final message. Times are ms from just before the POST.
async function runJob(prompt, maxTokens) {
  const t0 = performance.now();
  const job = await api('POST', '/api/v1/jobs', { model: engine.model, prompt, max_tokens: maxTokens, temperature: 0 });
  const posted = performance.now() - t0;
  const events = [];
  const final = await new Promise((resolve, reject) => {
    const ws = new WebSocket(`${apiUrl.replace(/^http/, 'ws')}/api/v1/jobs/${job.id}/stream`);
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`job ${job.id} timed out`)); }, JOB_TIMEOUT_MS);
    let last;
    ws.on('message', (raw) => {
      const arrived = performance.now() - t0;
      const m = JSON.parse(raw.toString());
      if (m.final) {
        last = m;
        return;
      }
      events.push({ arrived, type: m.type, at: m.at, data: m.data });
    });
    ws.on('close', () => {
      clearTimeout(timer);
      if (last) resolve(last);
      else reject(new Error(`job ${job.id}: stream closed without a final message`));
    });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
  if (final.data.state !== 'completed') throw new Error(`job ${job.id} ${final.data.state}: ${final.data.error}`);

  const pieces = events.filter((e) => e.type === 'progress' && e.data.text);
  const streamed = pieces.filter((e) => !e.data.from_result);
  const first = pieces[0];
  const lastPiece = pieces[pieces.length - 1];
  const outputTokens = final.data.usage.output_tokens;
  // The consumer's clock, relative to the job's first event ("submitted").
  const at0 = events[0].at;
  const atOf = (pred) => {
    const e = events.find(pred);
    return e ? e.at - at0 : null;
  };
  const firstTokens = first.data.from_result ? outputTokens : first.data.tokens;
  const span = lastPiece.arrived - first.arrived;
  return {
    id: job.id,
    input_tokens: final.data.usage.input_tokens,
    provider_engine_ms: await providerEngineMs(job.id),
    post_ms: posted,
    ttft_ms: first.arrived,
    last_piece_ms: lastPiece.arrived,
    output_tokens: outputTokens,
    first_piece_tokens: firstTokens,
    decode_tokens_per_second: span > 0 && outputTokens > firstTokens ? ((outputTokens - firstTokens) * 1000) / span : 0,
    progress_events: streamed.length,
    tokens_from_result: outputTokens - (streamed.length ? streamed[streamed.length - 1].data.tokens : 0),
    consumer_ms: {
      assigned: atOf((e) => e.type === 'state' && e.data.state === 'assigned'),
      running: atOf((e) => e.type === 'state' && e.data.state === 'running'),
      first_progress: atOf((e) => e.type === 'progress'),
      result: atOf((e) => e.type === 'result'),
    },
  };
}

await waitForModel();
// One of each to warm up, as the engine benchmark and llama-bench do.
if (WARMUP) {
  await runJob(engine.long_prompt, 1);
  await runJob(engine.short_prompt, engine.gen_tokens);
}
const prefill = [];
const decode = [];
for (let rep = 0; rep < REPS; rep++) {
  prefill.push(await runJob(engine.long_prompt, 1));
  decode.push(await runJob(engine.short_prompt, engine.gen_tokens));
}
const pick = (jobs, key) => median(jobs.map((j) => j[key]));
process.stdout.write(JSON.stringify({
  model: engine.model,
  reps: REPS,
  prefill_ttft_ms: pick(prefill, 'ttft_ms'),
  prefill_post_ms: pick(prefill, 'post_ms'),
  decode_ttft_ms: pick(decode, 'ttft_ms'),
  decode_tokens_per_second: pick(decode, 'decode_tokens_per_second'),
  decode_first_piece_tokens: pick(decode, 'first_piece_tokens'),
  decode_progress_events: pick(decode, 'progress_events'),
  prefill_jobs: prefill,
  decode_jobs: decode,
}) + '\n');
