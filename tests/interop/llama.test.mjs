// Real inference across the network: a relay, two providers serving the project's own tiny model through the
// llama engine, and a consumer, all real processes on loopback, driven through the CLI and the REST API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startNode, api, waitFor, tempDir, finalJob } from './node_process.mjs';
import { runAsync } from './infernet_cli.mjs';

const MODEL = process.env.INFERNET_TINY_MODEL;
const CORPUS = '/usr/share/common-licenses/Apache-2.0';
const skip = !MODEL ? 'INFERNET_TINY_MODEL is not set (the build makes it: target tiny_model)' : false;


async function network() {
  const models = tempDir('infernet-models-');
  copyFileSync(MODEL, join(models, 'tiny.gguf'));
  // A broken file beside it: reported and skipped, never fatal.
  writeFileSync(join(models, 'broken.gguf'), 'GGUF and nothing else');
  const relay = await startNode({ roles: ['relay'] });
  const common = { 'node.relays': relay.relayUrl, 'node.heartbeat_seconds': 1 };
  const provs = [];
  for (let i = 0; i < 2; i++) {
    provs.push(await startNode({
      roles: ['provider'],
      settings: { ...common, 'provider.engine': 'llama', 'provider.models_dir': models, 'provider.threads': 1,
        'provider.context': 256, 'provider.name': `llama-${i}` },
    }));
  }
  const consumer = await startNode({ roles: ['consumer'], settings: common });
  await waitFor(async () => {
    const r = await api(consumer, 'GET', '/api/v1/providers');
    return r.status === 200 && r.body.providers.filter((p) => p.alive).length === 2;
  }, 20000, 'providers announced to the consumer');
  const all = [relay, ...provs, consumer];
  return { relay, providers: provs, consumer, stop: () => Promise.all(all.map((n) => n.stop('SIGKILL'))) };
}


test('the tiny model serves jobs across the network and continues its corpus', { skip }, async () => {
  const net = await network();
  try {
    // The provider announced the model from its GGUF header, with its fingerprint; the broken file is not there.
    const models = (await api(net.consumer, 'GET', '/api/v1/models')).body.models;
    const tiny = models.find((m) => m.name === 'tiny');
    assert.ok(tiny, JSON.stringify(models));
    assert.ok(!models.some((m) => m.name === 'broken'));
    assert.match(JSON.stringify(tiny), /[0-9a-f]{64}/);
    assert.match(net.providers[0].stderr(), /broken\.gguf/);

    // Greedy decoding of the start of a corpus line goes on as the corpus does, for most lines (the model is
    // small: a line whose start also begins other lines can drift to one of them).
    const corpus = readFileSync(CORPUS, 'utf8');
    const starts = ['"Derivative Works" shall mean any work', 'You may obtain a copy of the License at',
      'appropriateness of using or redistributing'];
    let reproduced = 0;
    let r;
    for (const prompt of starts) {
      const at = corpus.indexOf(prompt);
      assert.ok(at >= 0, prompt);
      r = await runAsync(['submit', '--api', net.consumer.apiUrl, '--model', 'tiny', '--prompt', prompt,
        '--max-tokens', '30', '--watch']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.length > 0);
      if (corpus.startsWith(r.stdout, at + prompt.length)) reproduced++;
    }
    assert.ok(reproduced >= 2, `only ${reproduced} of 3 corpus lines continued as the corpus does`);
    const prompt = starts[starts.length - 1];

    // The same request again gives the same text; the job carries the engine's token counts.
    const again = await runAsync(['submit', '--api', net.consumer.apiUrl, '--model', 'tiny', '--prompt', prompt,
      '--max-tokens', '30', '--deterministic', '--json']);
    assert.equal(again.code, 0, again.stderr);
    const job = await finalJob(net.consumer, JSON.parse(again.stdout).id);
    assert.equal(job.state, 'completed', JSON.stringify(job));
    assert.equal(job.output, r.stdout);
    assert.equal(job.usage.input_tokens, prompt.length + 1);
    assert.equal(job.usage.output_tokens, 30);
    assert.equal(job.deterministic, true);
  } finally {
    await net.stop();
  }
});

test('chat messages, stop sequences and sampling parameters reach the engine', { skip }, async () => {
  const net = await network();
  try {
    const post = async (body) => {
      const r = await api(net.consumer, 'POST', '/api/v1/jobs', { model: 'tiny', max_tokens: 40, ...body });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return finalJob(net.consumer, r.body.id);
    };
    // An estimate counts the input with the model's own tokenizer, as the job then counts it.
    const estimate = async (body) => {
      const e = await api(net.consumer, 'POST', '/api/v1/estimate', { model: 'tiny', max_tokens: 40, ...body });
      assert.equal(e.status, 200, JSON.stringify(e.body));
      assert.equal(e.body.input_tokens_source, 'tokenizer', JSON.stringify(e.body));
      assert.ok(net.providers.some((p) => p.pubkey === e.body.input_tokens_counted_by), e.body.input_tokens_counted_by);
      assert.ok(e.body.input_tokens <= e.body.input_tokens_bound, JSON.stringify(e.body));
      assert.equal(e.body.chosen.expected.input_tokens, e.body.input_tokens);
      assert.equal(e.body.chosen.worst_case.input_tokens, e.body.input_tokens_bound);
      return e.body;
    };
    const chatBody = { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }] };
    const chatEstimate = await estimate(chatBody);
    const chat = await post(chatBody);
    assert.equal(chat.state, 'completed', JSON.stringify(chat));
    // The chat template wraps 11 bytes of content in its own markers.
    assert.ok(chat.usage.input_tokens > 30, JSON.stringify(chat.usage));
    assert.equal(chatEstimate.input_tokens, chat.usage.input_tokens);

    const fullEstimate = await estimate({ prompt: 'Licensed under the ' });
    const full = await post({ prompt: 'Licensed under the ' });
    assert.equal(full.state, 'completed');
    assert.equal(fullEstimate.input_tokens, full.usage.input_tokens);
    const cli = await runAsync(['estimate', '--api', net.consumer.apiUrl, '--model', 'tiny', '--prompt',
      'Licensed under the ', '--max-tokens', '40']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`input ${full.usage.input_tokens} tokens \\(counted by the model's tokenizer at [0-9a-f]{12}; prices agreed on the bound of ${fullEstimate.input_tokens_bound}\\)`));
    const stop = full.output.slice(8, 11);
    const stopped = await post({ prompt: 'Licensed under the ', stop: [stop] });
    assert.equal(stopped.output, full.output.slice(0, full.output.indexOf(stop)));

    const a = await post({ prompt: 'The ', temperature: 1.5, seed: 11, top_k: 20, top_p: 0.95, min_p: 0.01,
      repeat_penalty: 1.2, repeat_last_n: 32, deterministic: true });
    const b = await post({ prompt: 'The ', temperature: 1.5, seed: 11, top_k: 20, top_p: 0.95, min_p: 0.01,
      repeat_penalty: 1.2, repeat_last_n: 32, deterministic: true });
    assert.equal(a.state, 'completed');
    assert.equal(a.output, b.output, 'the same seed and parameters give the same text');

    // A prompt longer than the context fails with the engine's reason, and the API refuses bad parameters.
    const long = await post({ prompt: 'a'.repeat(400) });
    assert.equal(long.state, 'failed');
    assert.match(long.error, /context/);
    const bad = await api(net.consumer, 'POST', '/api/v1/jobs', { model: 'tiny', prompt: 'x', top_p: 0 });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /top_p/);
  } finally {
    await net.stop();
  }
});

test('a provider on the proxy engine forwards jobs to a running llama-server', { skip: skip || (!process.env.INFERNET_LLAMA_SERVER && 'INFERNET_LLAMA_SERVER is not set') }, async () => {
  // llama-server on a port the OS picked a moment ago.
  const port = await new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = probe.address();
      probe.close(() => resolve(p));
    });
  });
  const server = spawn(process.env.INFERNET_LLAMA_SERVER, ['--host', '127.0.0.1', '--port', String(port), '-m',
    MODEL, '-c', '512', '-np', '2', '-t', '1', '--no-webui'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  server.stdout.on('data', (d) => { log += d; });
  server.stderr.on('data', (d) => { log += d; });
  const nodes = [];
  try {
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => {
      const health = await fetch(`${url}/health`).catch(() => null);
      return health && health.status === 200;
    }, 30000, `llama-server to listen:\n${log}`);
    const relay = await startNode({ roles: ['relay'] });
    nodes.push(relay);
    const common = { 'node.relays': relay.relayUrl, 'node.heartbeat_seconds': 1 };
    nodes.push(await startNode({
      roles: ['provider'],
      settings: { ...common, 'provider.engine': 'proxy', 'provider.proxy_url': `${url}/v1`, 'provider.models': 'tiny' },
    }));
    const consumer = await startNode({ roles: ['consumer'], settings: common });
    nodes.push(consumer);
    await waitFor(async () => {
      const r = await api(consumer, 'GET', '/api/v1/providers');
      return r.status === 200 && r.body.providers.some((p) => p.alive);
    }, 20000, 'the proxy provider announced');
    const prompt = 'You may obtain a copy of the License at';
    const submitted = await api(consumer, 'POST', '/api/v1/jobs', { model: 'tiny', prompt, max_tokens: 20 });
    assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
    const job = await finalJob(consumer, submitted.body.id);
    assert.equal(job.state, 'completed', JSON.stringify(job));
    // The text is llama-server's own answer to the same request.
    const direct = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', prompt, max_tokens: 20, temperature: 0 }),
    }).then((r) => r.json());
    assert.equal(job.output, direct.choices[0].text);
    assert.equal(job.usage.output_tokens, direct.usage.completion_tokens);
  } finally {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    server.kill('SIGKILL');
  }
});
