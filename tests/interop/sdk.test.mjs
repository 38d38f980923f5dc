// The JavaScript SDK (sdk/js, infernet-sdk) against a live network on loopback: a relay, a provider with a GPU
// (an nvidia-smi on its PATH that reports an A100, which is how providers find their GPUs), a CPU-only
// provider, and a consumer node. Covers the consumer guide's two "API Integration" examples as written
// (only the model, key and key names changed to local ones) and the job shape they use.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { npubEncode } from 'nostr-tools/nip19';
import { startNode, api, waitFor, fakeEcho, tempDir } from './node_process.mjs';
import { runAsync } from './infernet_cli.mjs';
import { InfernetClient, InfernetError } from '../../sdk/js/src/index.js';

const A100 = 'NVIDIA A100-SXM4-80GB';
let net;

// A provider whose hardware detection finds `gpu`: a stand-in nvidia-smi first on its PATH.
async function startGpuProvider(settings, gpu) {
  const bin = join(tempDir('infernet-smi-'), 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'nvidia-smi'), `#!/bin/sh\necho "${gpu}, 81920"\n`, { mode: 0o755 });
  const path = process.env.PATH;
  process.env.PATH = `${bin}:${path}`;
  try {
    return await startNode({ roles: ['provider'], settings });
  } finally {
    process.env.PATH = path;
  }
}

before(async () => {
  const relay = await startNode({ roles: ['relay'] });
  const common = { 'node.relays': relay.relayUrl, 'node.heartbeat_seconds': 1 };
  const gpuBox = await startGpuProvider({ ...common, 'provider.name': 'a100-box' }, A100);
  // Slow tokens on the CPU box, so a stream can be dropped mid-job.
  const cpuBox = await startNode({ roles: ['provider'], settings: { ...common, 'provider.name': 'cpu-box', 'provider.fake_token_delay_ms': 60 } });
  // Every request must carry a key, made with the CLI as a user would.
  const consumer = await startNode({ roles: ['consumer'], settings: { ...common, 'api.auth': 'required' } });
  const made = await runAsync(['--data-dir', consumer.dataDir, 'apikey', 'create', '--scope', 'submit', '--json']);
  assert.equal(made.code, 0, made.stderr);
  const apiKey = JSON.parse(made.stdout).key;
  consumer.apiKey = apiKey;
  await waitFor(async () => {
    const r = await api(consumer, 'GET', '/api/v1/providers');
    return r.status === 200 && r.body.providers.filter((p) => p.alive).length === 2;
  }, 15000, 'both providers announced');
  const user = generateSecretKey();
  net = {
    relay, gpuBox, cpuBox, consumer,
    apiKey,
    client: () => new InfernetClient({ apiKey, nostrPublicKey: npubEncode(getPublicKey(user)), baseUrl: consumer.apiUrl }),
  };
});

after(async () => {
  if (net) await Promise.all([net.relay, net.gpuBox, net.cpuBox, net.consumer].map((n) => n.stop('SIGKILL')));
});

async function notes(jobId) {
  return (await api(net.consumer, 'GET', `/api/v1/jobs/${jobId}/events`)).body.events.filter((e) => e.type === 'note').map((e) => e.data);
}

test("the guide's first example: submit with input, resources and budget, then wait for the result", async () => {
  const client = net.client();
  const job = await client.createInferenceJob({
    model: 'fake-echo',
    input: {
      prompt: 'A futuristic city with flying cars and neon lights',
      negative_prompt: 'blurry, low quality',
      num_inference_steps: 50,
    },
    resources: {
      gpu_type: 'NVIDIA_A100',
      priority: 'medium',
    },
    budget: {
      max_cost_sats: 10000,
    },
  });

  // Poll for results
  const result = await client.waitForJobCompletion(job.id, { pollIntervalMs: 100, timeoutMs: 30000 });
  console.log(result.output.slice(0, 60));

  assert.equal(result.state, 'completed');
  assert.equal(result.output, fakeEcho('A futuristic city with flying cars and neon lights', 256));
  assert.deepEqual(job.warnings, [
    'input.negative_prompt: ignored: model fake-echo takes no such parameter',
    'input.num_inference_steps: ignored: model fake-echo takes no such parameter',
  ]);
  assert.equal(job.max_cost_msat, 10000 * 1000, 'sats become millisatoshis');
  assert.equal(job.priority, 'medium', 'medium is the canonical name (normal is read as it)');
  assert.equal(job.gpu_type, 'NVIDIA_A100');
  const done = await client.getJob(job.id);
  assert.equal(done.provider, net.gpuBox.pubkey, 'the A100 provider ran it');
  const messages = (await notes(job.id)).map((n) => n.message);
  assert.ok(messages.includes('input.num_inference_steps: ignored: model fake-echo takes no such parameter'), messages.join('\n'));
  assert.ok(messages.includes('passed over: hardware: no GPU matching gpu_type NVIDIA_A100 (has: no GPU)'), messages.join('\n'));
});

test("the guide's second example: a job's stream gives progress, partial results and completion", async () => {
  const client = net.client();
  const job = await client.createInferenceJob({ model: 'fake-echo', input: { prompt: 'relays carry every token' }, parameters: { max_tokens: 12 }, resources: { gpu_type: 'NVIDIA_A100' } });
  const percentages = [];
  const pieces = [];
  const finished = new Promise((resolve, reject) => {
    // Example: Stream inference results using WebSockets
    const socket = client.connectToJobStream(job.id);

    socket.on('progress', (progress) => {
      percentages.push(progress.percentage);
      console.log(`Job progress: ${progress.percentage}%`);
    });

    const updateUI = (partialResult) => pieces.push(partialResult);
    socket.on('result', (partialResult) => {
      // Handle streaming results as they arrive
      updateUI(partialResult);
    });

    socket.on('complete', (finalResult) => {
      console.log('Job completed:', finalResult.id);
      socket.disconnect();
      resolve(finalResult);
    });
    socket.on('error', reject);
  });
  const final = await finished;
  assert.equal(final.state, 'completed');
  assert.equal(final.output, fakeEcho('relays carry every token', 12));
  assert.equal(pieces.map((p) => p.text).join(''), final.output);
  assert.equal(pieces.at(-1).output, final.output, 'each partial result carries the output so far');
  assert.equal(percentages.at(-1), 100);
  assert.ok(percentages.every((p, i) => i === 0 || p >= percentages[i - 1]), `percentages rise: ${percentages}`);
});

test('a stream dropped mid-job re-attaches and misses nothing, repeats nothing', async () => {
  const client = net.client();
  const prompt = 'one two three four five';
  const job = await client.createInferenceJob({ model: 'fake-echo', input: { prompt }, parameters: { max_tokens: 40 }, resources: { gpu_type: 'cpu' } });
  const stream = client.connectToJobStream(job.id);
  const texts = [];
  const seqs = [];
  let dropped = false;
  const reconnects = [];
  const final = await new Promise((resolve, reject) => {
    stream.on('result', (r) => {
      texts.push(r.text);
      seqs.push(r.seq);
      if (texts.length === 3 && !dropped) {
        dropped = true;
        stream.socket.terminate(); // the connection dies without a close handshake
      }
    });
    stream.on('reconnect', (info) => reconnects.push(info));
    stream.on('complete', resolve);
    stream.on('error', reject);
  });
  assert.ok(dropped);
  assert.equal(reconnects.length, 1);
  assert.ok(reconnects[0].after >= seqs[2], 're-attached after the last event seen');
  assert.equal(final.provider, net.cpuBox.pubkey);
  assert.equal(final.output, fakeEcho(prompt, 40));
  assert.ok(texts.length > 3, 'pieces arrived after the drop');
  assert.equal(texts.join(''), final.output, 'the pieces are the output exactly');
  assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), 'no event twice');
});

test('a gpu_type no provider has leaves the job waiting, with a note naming why for each provider', async () => {
  const client = net.client();
  const job = await client.createInferenceJob({ model: 'fake-echo', input: { prompt: 'x' }, resources: { gpu_type: 'NVIDIA_H100' } });
  const passedOver = await waitFor(async () => {
    const n = (await notes(job.id)).filter((d) => d.message.startsWith('passed over: hardware'));
    return n.length === 2 ? n : null;
  }, 5000, 'notes for both providers');
  const byProvider = Object.fromEntries(passedOver.map((n) => [n.provider, n.message]));
  assert.equal(byProvider[net.gpuBox.pubkey], `passed over: hardware: no GPU matching gpu_type NVIDIA_H100 (has: ${A100} 81920 MB)`);
  assert.equal(byProvider[net.cpuBox.pubkey], 'passed over: hardware: no GPU matching gpu_type NVIDIA_H100 (has: no GPU)');
  assert.ok((await notes(job.id)).some((n) => n.message === 'waiting: no provider of fake-echo can take it now'));
  await new Promise((r) => setTimeout(r, 1500));
  const still = await client.getJob(job.id);
  assert.equal(still.state, 'submitted');
  assert.equal(still.attempt, 0);
  const canceled = await client.cancelJob(job.id);
  assert.equal(canceled.state, 'canceled');
  const err = await client.waitForJobCompletion(job.id, { pollIntervalMs: 50 }).catch((e) => e);
  assert.ok(err instanceof InfernetError);
  assert.equal(err.code, 'job_canceled');
  assert.equal(err.job.id, job.id);
});

test('API errors reach the caller as InfernetError with status, code, message and field', async () => {
  const client = net.client();
  const bad = await client.createInferenceJob({ model: 'fake-echo', input: { prompt: 'x' }, parameters: { temperature: 'hot' } }).catch((e) => e);
  assert.ok(bad instanceof InfernetError);
  assert.equal(bad.status, 400);
  assert.equal(bad.code, 'invalid_input');
  assert.equal(bad.field, 'parameters.temperature');
  assert.equal(bad.message, 'parameters.temperature: must be a number');
  const twice = await client.createInferenceJob({ model: 'fake-echo', prompt: 'x', input: { prompt: 'y' } }).catch((e) => e);
  assert.equal(twice.status, 400);
  assert.equal(twice.message, 'input.prompt: also given as prompt; give it once');
  const sats = await client.createInferenceJob({ model: 'fake-echo', input: { prompt: 'x' }, budget: { max_cost_sats: 1, max_cost_msat: 5 } }).catch((e) => e);
  assert.equal(sats.field, 'budget.max_cost_msat');
  assert.match(sats.message, /budget\.max_cost_sats/);
  const missing = await client.getJob('0123456789abcdef').catch((e) => e);
  assert.equal(missing.status, 404);
  assert.equal(missing.code, 'not_found');
  assert.equal((await client.listJobs({ state: 'canceled' })).every((j) => j.state === 'canceled'), true);
});

test('files by blob hash: an uploaded text file is attached to the prompt', async () => {
  const client = net.client();
  const text = 'The attached notes say hello.';
  const blob = await client.uploadBlob(text);
  assert.match(blob.sha256, /^[0-9a-f]{64}$/);
  assert.equal(blob.size, text.length);
  assert.equal(blob.url, `${net.consumer.apiUrl}/${blob.sha256}`);
  assert.equal(await (await fetch(blob.url, { headers: { authorization: `Bearer ${net.apiKey}` } })).text(), text);

  const job = await client.createInferenceJob({ model: 'fake-echo', input: { prompt: 'Summarize:', files: [blob.sha256] }, parameters: { max_tokens: 8 }, resources: { gpu_type: 'NVIDIA_A100' } });
  assert.equal(job.prompt, `Summarize:\n\nFile ${blob.sha256}:\n${text}`);
  const result = await client.waitForJobCompletion(job.id, { pollIntervalMs: 100, timeoutMs: 20000 });
  assert.equal(result.output, fakeEcho(job.prompt, 8));
  assert.match(result.output, /notes say hello\./);

  const binary = await client.uploadBlob(new Uint8Array([0, 159, 146, 150]));
  const refused = await client.createInferenceJob({ model: 'fake-echo', input: { prompt: 'x', files: [blob.sha256, binary.sha256] } }).catch((e) => e);
  assert.equal(refused.status, 400);
  assert.equal(refused.field, 'input.files[1]');
  await client.deleteBlob(binary.sha256);
  const gone = await client.createInferenceJob({ model: 'fake-echo', input: { prompt: 'x', files: [binary.sha256] } }).catch((e) => e);
  assert.equal(gone.field, 'input.files[0]');
  assert.match(gone.message, /no blob/);
});

test('models and providers as the SDK lists them', async () => {
  const client = net.client();
  const models = await client.listModels();
  assert.deepEqual(models.map((m) => m.name), ['fake-echo']);
  assert.equal(models[0].providers.length, 2);
  const providers = await client.listProviders();
  const gpu = providers.find((p) => p.pubkey === net.gpuBox.pubkey);
  assert.deepEqual(gpu.hardware.gpus, [{ name: A100, memory_mb: 81920 }]);
  assert.deepEqual(providers.find((p) => p.pubkey === net.cpuBox.pubkey).hardware.gpus, []);
});
