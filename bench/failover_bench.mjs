// Failover time: from a provider's death (SIGKILL, mid-stream) to the first resumed text on the client's
// stream, across real processes with the default heartbeat. A relay, a consumer, and providers of the fake
// engine streaming one token per 20 ms; each run streams an OpenAI text completion through the consumer,
// kills the provider running it after its first chunks, checks the finished text is the uninterrupted one,
// and starts a fresh provider so that two stay up. Prints one JSON object: every run's milliseconds, the
// median and the slowest.
//   node bench/failover_bench.mjs [RUNS]      (INFERNET_BIN: the infernet binary)
import OpenAI from 'openai';
import { startNode, api, waitFor, fakeEcho } from '../tests/interop/node_process.mjs';
import { runAsync } from '../tests/interop/infernet_cli.mjs';

const runs = Number(process.argv[2] || 7);
const PROMPT = 'one two three four five six seven eight';
const MAX_TOKENS = 150;

const relay = await startNode({ roles: ['relay'], logLevel: 'warn' });
const common = { 'node.relays': relay.relayUrl };
const startProvider = (i) => startNode({
  roles: ['provider'], logLevel: 'warn',
  settings: { ...common, 'provider.name': `bench-${i}`, 'provider.fake_token_delay_ms': 20 },
});
let providers = [await startProvider(0), await startProvider(1)];
const consumer = await startNode({ roles: ['consumer'], logLevel: 'warn', settings: { ...common, 'api.auth': 'required' } });
const made = await runAsync(['--data-dir', consumer.dataDir, 'apikey', 'create', '--scope', 'submit', '--json']);
if (made.code !== 0) throw new Error(made.stderr);
consumer.apiKey = JSON.parse(made.stdout).key;
const client = new OpenAI({ baseURL: `${consumer.apiUrl}/v1`, apiKey: consumer.apiKey, maxRetries: 0 });
const stopped = [];

async function alive(n) {
  await waitFor(async () => {
    const r = await api(consumer, 'GET', '/api/v1/providers');
    const live = new Set(providers.map((p) => p.pubkey));
    return r.body.providers.filter((p) => p.alive && live.has(p.pubkey)).length >= n;
  }, 30000, `${n} providers alive`);
}

const times = [];
try {
  await alive(2);
  for (let run = 0; run < runs; run++) {
    const stream = await client.completions.create({ model: 'fake-echo', prompt: PROMPT, max_tokens: MAX_TOKENS, stream: true });
    let text = '';
    let killedAt = null;
    let firstAfter = null;
    let victim = null;
    for await (const chunk of stream) {
      const piece = chunk.choices[0]?.text || '';
      if (!piece) continue;
      text += piece;
      if (killedAt !== null && firstAfter === null) firstAfter = performance.now();
      if (killedAt === null && text.length > 30) {
        const job = (await api(consumer, 'GET', `/api/v1/jobs/${chunk.id.replace(/^cmpl-/, '')}`)).body;
        victim = providers.find((p) => p.pubkey === job.provider);
        killedAt = performance.now();
        await victim.stop('SIGKILL');
      }
    }
    if (text !== fakeEcho(PROMPT, MAX_TOKENS)) throw new Error(`run ${run}: the text differs from the uninterrupted one`);
    if (firstAfter === null) throw new Error(`run ${run}: no text after the kill`);
    times.push(firstAfter - killedAt);
    providers = providers.filter((p) => p !== victim);
    stopped.push(victim);
    providers.push(await startProvider(run + 2));
    await alive(2);
  }
} finally {
  await Promise.all([relay, consumer, ...providers].map((n) => n.stop('SIGKILL')));
}
const sorted = [...times].sort((a, b) => a - b);
const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
console.log(JSON.stringify({
  runs: times.length, heartbeat_seconds: 10, failover_ms: times.map((t) => Math.round(t)),
  median_ms: Math.round(median), max_ms: Math.round(sorted[sorted.length - 1]), goal_ms: 3000,
}));
