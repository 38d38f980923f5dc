// The failover fault test (docs/market-failover.md): a relay, two providers serving the project's tiny model
// through the llama engine with the same thread and batch settings, and a consumer behind an API key. The
// official `openai` npm client streams a greedy text completion; once the first chunks are in, the provider
// running the job is killed with SIGKILL. The stream must complete from the other provider, its text equal
// to the same request run uninterrupted, with no piece lost or repeated, and each token charged once.
//
// To give the test time to act mid-stream, the providers pause after each token
// (provider.test_token_delay_ms, a setting for tests only: it changes timing, never the text).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startNode, api, waitFor, tempDir } from './node_process.mjs';
import { runAsync } from './infernet_cli.mjs';

const MODEL = process.env.INFERNET_TINY_MODEL;
const skip = !MODEL ? 'INFERNET_TINY_MODEL is not set (the build makes it: target tiny_model)' : false;
const PROMPT = 'Licensed under the Apache License, Version 2.0 (the "License");';
const MAX_TOKENS = 160;
let net;

before(async () => {
  if (skip) return;
  const models = tempDir('infernet-models-');
  copyFileSync(MODEL, join(models, 'tiny.gguf'));
  const relay = await startNode({ roles: ['relay'] });
  // The default heartbeat: failover must not depend on a short one.
  const common = { 'node.relays': relay.relayUrl };
  const providerSettings = (name) => ({
    ...common, 'provider.engine': 'llama', 'provider.models_dir': models, 'provider.threads': 1,
    'provider.batch': 512, 'provider.context': 256, 'provider.name': name, 'provider.slots': 1,
    'provider.price_per_1k_input_msat': 0, 'provider.price_per_1k_output_msat': 1000,
    'provider.test_token_delay_ms': 15,
  });
  const providers = [];
  for (const name of ['box-a', 'box-b']) providers.push(await startNode({ roles: ['provider'], settings: providerSettings(name) }));
  const consumer = await startNode({ roles: ['consumer'], settings: { ...common, 'api.auth': 'required' } });
  const made = await runAsync(['--data-dir', consumer.dataDir, 'apikey', 'create', '--scope', 'submit', '--json']);
  assert.equal(made.code, 0, made.stderr);
  consumer.apiKey = JSON.parse(made.stdout).key;
  await waitFor(async () => {
    const r = await api(consumer, 'GET', '/api/v1/providers');
    return r.status === 200 && r.body.providers.filter((p) => p.alive).length === 2;
  }, 20000, 'the providers announced to the consumer');
  const client = new OpenAI({ baseURL: `${consumer.apiUrl}/v1`, apiKey: consumer.apiKey, maxRetries: 0 });
  net = { relay, providers, consumer, client, all: [relay, ...providers, consumer] };
});

after(async () => {
  if (net) await Promise.all(net.all.map((n) => n.stop('SIGKILL')));
});

async function openStream() {
  return net.client.completions.create({
    model: 'tiny', prompt: PROMPT, max_tokens: MAX_TOKENS, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
}

// Reads a stream to its end; `onChunk(textSoFar, chunk)` may act in the middle of it.
async function readStream(stream, onChunk = async () => {}) {
  const out = { text: '', pieces: [], finish: null, usage: null, id: null, arrivals: [] };
  for await (const chunk of stream) {
    out.id = chunk.id;
    if (chunk.usage) out.usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.text) {
        out.text += choice.text;
        out.pieces.push(choice.text);
        out.arrivals.push(performance.now());
      }
      if (choice.finish_reason) out.finish = choice.finish_reason;
    }
    await onChunk(out, chunk);
  }
  return out;
}

test('a provider killed mid-stream: the stream completes from the other, the same text, each token once', { skip, timeout: 120000 }, async () => {
  // The same request, alone and uninterrupted.
  const whole = await readStream(await openStream());
  assert.ok(whole.text.length > 40, `the uninterrupted run generated text: ${JSON.stringify(whole.text)}`);
  assert.equal(whole.usage.completion_tokens, MAX_TOKENS);
  const wholeJob = (await api(net.consumer, 'GET', `/api/v1/jobs/${whole.id.replace(/^cmpl-/, '')}`)).body;
  assert.equal(wholeJob.state, 'completed');
  assert.equal(wholeJob.cost_msat, MAX_TOKENS, 'one msat per output token');

  // Again, and the provider running it dies after the first chunks.
  let killed = null;
  let victim = null;
  const faulted = await readStream(await openStream(), async (sofar) => {
    if (killed || sofar.text.length < 20) return;
    const job = (await api(net.consumer, 'GET', `/api/v1/jobs/${sofar.id.replace(/^cmpl-/, '')}`)).body;
    victim = net.providers.find((p) => p.pubkey === job.provider);
    assert.ok(victim, `the job's provider ${job.provider} is one of ours`);
    killed = { at: performance.now(), pieces: sofar.pieces.length };
    await victim.stop('SIGKILL');
  });
  assert.ok(killed, 'the provider was killed mid-stream');
  assert.ok(killed.pieces < faulted.pieces.length, 'text kept coming after the kill');
  const resumedAfterMs = faulted.arrivals[killed.pieces] - killed.at;
  console.log(`failover: first resumed text ${resumedAfterMs.toFixed(0)} ms after the SIGKILL`);

  // No text lost, none repeated: exactly the uninterrupted text.
  assert.equal(faulted.text, whole.text);
  assert.equal(faulted.finish, whole.finish);
  assert.equal(faulted.usage.completion_tokens, whole.usage.completion_tokens, 'each token counted once');
  assert.equal(faulted.usage.prompt_tokens, whole.usage.prompt_tokens);

  const id = faulted.id.replace(/^cmpl-/, '');
  const job = (await api(net.consumer, 'GET', `/api/v1/jobs/${id}`)).body;
  assert.equal(job.state, 'completed');
  assert.equal(job.attempt, 2);
  assert.notEqual(job.provider, victim.pubkey);
  assert.equal(job.output, whole.text);
  // Charged once per token: the dead provider never charged; the new one charged only what it generated.
  const events = (await api(net.consumer, 'GET', `/api/v1/jobs/${id}/events`)).body.events;
  const firstAttemptTokens = Math.max(0, ...events
    .filter((e) => e.type === 'progress' && e.data.attempt === 1).map((e) => e.data.tokens));
  assert.ok(firstAttemptTokens > 0, 'the first provider delivered tokens before it died');
  assert.equal(job.cost_msat + firstAttemptTokens, MAX_TOKENS);
  const notes = events.filter((e) => e.type === 'note').map((e) => e.data.message);
  assert.ok(notes.some((m) => /no progress within/.test(m)), JSON.stringify(notes));
});
