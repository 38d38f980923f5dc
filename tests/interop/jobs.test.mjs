// Jobs end to end with real processes on loopback: a relay, two providers (the fake engine) and a consumer,
// driven through the CLI and the REST API; and the faults the job protocol must survive, each really caused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import * as nip44 from 'nostr-tools/nip44';
import WebSocket from 'ws';
import { startNode, api, waitFor, fakeEcho, finalJob } from './node_process.mjs';
import { runAsync } from './infernet_cli.mjs';

useWebSocketImplementation(WebSocket);

// Short timeouts so failover happens within a test's time.
const CONSUMER = { 'consumer.accept_timeout_ms': 2000, 'consumer.stall_timeout_ms': 1500, 'node.heartbeat_seconds': 1 };

async function network({ providers = 2, tokenDelayMs = 0 } = {}) {
  const relay = await startNode({ roles: ['relay'] });
  const common = { 'node.relays': relay.relayUrl, 'node.heartbeat_seconds': 1 };
  const provs = [];
  for (let i = 0; i < providers; i++) {
    provs.push(await startNode({
      roles: ['provider'],
      settings: { ...common, 'provider.fake_token_delay_ms': tokenDelayMs, 'provider.name': `p${i}` },
    }));
  }
  const consumer = await startNode({ roles: ['consumer'], settings: { ...common, ...CONSUMER } });
  await waitFor(async () => {
    const r = await api(consumer, 'GET', '/api/v1/providers');
    return r.status === 200 && r.body.providers.filter((p) => p.alive).length === providers;
  }, 15000, 'providers announced to the consumer');
  const all = [relay, ...provs, consumer];
  return { relay, providers: provs, consumer, stop: () => Promise.all(all.map((n) => n.stop('SIGKILL'))) };
}


async function submit(consumer, body) {
  const r = await api(consumer, 'POST', '/api/v1/jobs', body);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}


test('a job submitted with the CLI completes on a provider, streamed', async () => {
  const net = await network();
  try {
    const prompt = 'hello infernet world';
    const r = await runAsync(['submit', '--api', net.consumer.apiUrl, '--model', 'fake-echo', '--prompt', prompt,
      '--max-tokens', '7', '--watch']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, fakeEcho(prompt, 7));
    const jobs = await runAsync(['jobs', '--api', net.consumer.apiUrl, '--json']);
    const list = JSON.parse(jobs.stdout).jobs;
    assert.equal(list.length, 1);
    assert.equal(list[0].state, 'completed');
    const events = (await api(net.consumer, 'GET', `/api/v1/jobs/${list[0].id}/events`)).body.events;
    const states = events.filter((e) => e.type === 'state').map((e) => e.data.state);
    assert.deepEqual(states, ['submitted', 'assigned', 'running', 'completed']);
    assert.ok(events.some((e) => e.type === 'progress'), 'progress was streamed');
    events.forEach((e, i) => assert.equal(e.seq, i + 1, 'event sequence has no gaps'));
  } finally {
    await net.stop();
  }
});

test('a provider killed mid-job: the job completes on the other provider', async () => {
  const net = await network({ tokenDelayMs: 60 });
  try {
    const prompt = 'one two three four five';
    const job = await submit(net.consumer, { model: 'fake-echo', prompt, max_tokens: 40 });
    const running = await waitFor(async () => {
      const j = (await api(net.consumer, 'GET', `/api/v1/jobs/${job.id}`)).body;
      return j.state === 'running' && j.output.length > 0 ? j : null;
    }, 10000, 'the job to run');
    const victim = net.providers.find((p) => p.pubkey === running.provider);
    assert.ok(victim, 'the running provider is one of ours');
    await victim.stop('SIGKILL');
    const done = await finalJob(net.consumer, job.id, 30000);
    assert.equal(done.state, 'completed', done.error);
    assert.equal(done.output, fakeEcho(prompt, 40));
    assert.notEqual(done.provider, victim.pubkey);
    assert.ok(done.attempt >= 2);
  } finally {
    await net.stop();
  }
});

test('the consumer killed mid-job and restarted: the job completes, its history intact', async () => {
  const net = await network({ providers: 1, tokenDelayMs: 40 });
  try {
    const prompt = 'alpha beta gamma';
    const job = await submit(net.consumer, { model: 'fake-echo', prompt, max_tokens: 30, client_request_id: 'restart-1' });
    await waitFor(async () => (await api(net.consumer, 'GET', `/api/v1/jobs/${job.id}`)).body.state === 'running',
      10000, 'the job to run');
    await net.consumer.stop('SIGKILL');
    const restarted = await startNode({
      roles: ['consumer'], dataDir: net.consumer.dataDir,
      settings: { 'node.relays': net.relay.relayUrl, ...CONSUMER },
    });
    net.consumer = restarted;
    try {
      const done = await finalJob(restarted, job.id, 30000);
      assert.equal(done.state, 'completed', done.error);
      assert.equal(done.output, fakeEcho(prompt, 30));
      // The same client request id still names the same job.
      const again = await api(restarted, 'POST', '/api/v1/jobs', { model: 'fake-echo', prompt, max_tokens: 30, client_request_id: 'restart-1' });
      assert.equal(again.body.id, job.id);
      const events = (await api(restarted, 'GET', `/api/v1/jobs/${job.id}/events`)).body.events;
      events.forEach((e, i) => assert.equal(e.seq, i + 1, 'history has no gaps'));
      assert.equal(events.filter((e) => e.type === 'state' && e.data.state === 'submitted').length, 1);
    } finally {
      await restarted.stop('SIGKILL');
    }
  } finally {
    await net.stop();
  }
});

test('the relay restarted: nodes reconnect and the job completes', async () => {
  const net = await network({ providers: 1 });
  try {
    const port = new URL(net.relay.relayUrl).port;
    await net.relay.stop('SIGKILL');
    net.relay = await startNode({ roles: ['relay'], dataDir: net.relay.dataDir, listen: `127.0.0.1:${port}` });
    const prompt = 'after the restart';
    const job = await submit(net.consumer, { model: 'fake-echo', prompt, max_tokens: 5 });
    const done = await finalJob(net.consumer, job.id, 30000);
    assert.equal(done.state, 'completed', done.error);
    assert.equal(done.output, fakeEcho(prompt, 5));
  } finally {
    await net.stop();
    await net.relay.stop('SIGKILL');
  }
});

test('forged and misaddressed events are ignored', async () => {
  const net = await network({ providers: 1, tokenDelayMs: 50 });
  try {
    const prompt = 'the real output';
    const job = await submit(net.consumer, { model: 'fake-echo', prompt, max_tokens: 20 });
    const running = await waitFor(async () => {
      const j = (await api(net.consumer, 'GET', `/api/v1/jobs/${job.id}`)).body;
      return j.state === 'running' ? j : null;
    }, 10000, 'the job to run');
    const relay = await Relay.connect(net.relay.relayUrl);
    const forger = generateSecretKey();
    const result = { v: 1, job_id: job.id, attempt: running.attempt, ok: true, output: 'FORGED', usage: { input_tokens: 1, output_tokens: 1 }, cost_msat: 0, seconds: 0 };
    // Forged: a valid event from a key that is not the job's provider.
    const forged = finalizeEvent({
      kind: 8344, created_at: Math.floor(Date.now() / 1000), tags: [['p', net.consumer.pubkey]],
      content: nip44.v2.encrypt(JSON.stringify(result), nip44.v2.utils.getConversationKey(forger, net.consumer.pubkey)),
    }, forger);
    await relay.publish(forged);
    // Misaddressed: tagged for the consumer but encrypted to someone else.
    const other = getPublicKey(generateSecretKey());
    const misaddressed = finalizeEvent({
      kind: 8344, created_at: Math.floor(Date.now() / 1000), tags: [['p', net.consumer.pubkey]],
      content: nip44.v2.encrypt(JSON.stringify(result), nip44.v2.utils.getConversationKey(forger, other)),
    }, forger);
    await relay.publish(misaddressed);
    relay.close();
    const done = await finalJob(net.consumer, job.id, 20000);
    assert.equal(done.state, 'completed');
    assert.equal(done.output, fakeEcho(prompt, 20));
    // Both were seen, and logged as ignored, each with its reason.
    const log = net.consumer.stderr();
    assert.match(log, new RegExp(`misaddressed or stale result for job ${job.id} from ${getPublicKey(forger)}`));
    assert.match(log, new RegExp(`dropped event ${misaddressed.id} from ${getPublicKey(forger)}`));
  } finally {
    await net.stop();
  }
});

test('a malformed API request gets a 4xx naming the field and stores nothing', async () => {
  const net = await network({ providers: 1 });
  try {
    const cases = [
      [{ model: 5, prompt: 'x' }, 'model'],
      [{ prompt: 'x' }, 'model'],
      [{ model: 'fake-echo', prompt: 'x', max_tokens: 0 }, 'max_tokens'],
      [{ model: 'fake-echo', prompt: 'x', priority: 'asap' }, 'priority'],
      [{ model: 'fake-echo', prompt: 'x', bogus: 1 }, 'bogus'],
    ];
    for (const [body, field] of cases) {
      const r = await api(net.consumer, 'POST', '/api/v1/jobs', body);
      assert.ok(r.status >= 400 && r.status < 500, `${JSON.stringify(body)} -> ${r.status}`);
      assert.equal(r.body.error.field, field, JSON.stringify(r.body));
    }
    const bad = await api(net.consumer, 'POST', '/api/v1/jobs', '{"model": "fake-echo", ');
    assert.equal(bad.status, 400);
    const list = await api(net.consumer, 'GET', '/api/v1/jobs');
    assert.deepEqual(list.body.jobs, []);
  } finally {
    await net.stop();
  }
});
