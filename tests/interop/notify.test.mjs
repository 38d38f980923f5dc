// Notifications end to end with real processes on loopback (a relay, a provider on the fake engine, a
// consumer): a webhook whose receiver is down while jobs complete and the consumer restarts, then gets every
// notification once, in order, signed; `infernet watch --all`; and the notification WebSocket re-attached
// with `after`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { spawn } from 'node:child_process';
import WebSocket from 'ws';
import { startNode, api, waitFor, finalJob } from './node_process.mjs';
import { BIN } from './infernet_cli.mjs';

const COMMON = { 'node.heartbeat_seconds': 1 };
// Retries at most 2 s apart: the receiver coming back is noticed within the test's patience.
const CONSUMER = { 'consumer.accept_timeout_ms': 2000, 'consumer.stall_timeout_ms': 1500, 'webhooks.retry_max_seconds': 2 };

async function network() {
  const relay = await startNode({ roles: ['relay'] });
  const settings = { ...COMMON, 'node.relays': relay.relayUrl };
  const provider = await startNode({ roles: ['provider'], settings });
  const net = { relay, provider, consumerSettings: { ...settings, ...CONSUMER } };
  net.consumer = await startConsumer(net);
  net.stop = () => Promise.all([relay, provider, net.consumer].map((n) => n.stop('SIGKILL')));
  return net;
}

async function startConsumer(net, dataDir) {
  const consumer = await startNode({ roles: ['consumer'], settings: net.consumerSettings, dataDir });
  await waitFor(async () => {
    const r = await api(consumer, 'GET', '/api/v1/providers');
    return r.status === 200 && r.body.providers.some((p) => p.alive);
  }, 15000, 'the provider announced to the consumer');
  return consumer;
}

// `promise`'s value, or a failure naming `what` when it has not settled within `ms`.
async function within(promise, ms, what) {
  let timer;
  const late = new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms); });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function runJob(consumer, prompt) {
  const r = await api(consumer, 'POST', '/api/v1/jobs', { model: 'fake-echo', prompt, max_tokens: 4 });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const done = await finalJob(consumer, r.body.id);
  assert.equal(done.state, 'completed', done.error);
  return r.body.id;
}

// Every stored notification after `after`, through the REST pages.
async function allNotifications(consumer, after = 0) {
  const out = [];
  for (;;) {
    const r = await api(consumer, 'GET', `/api/v1/notifications?after=${after}&limit=1000`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    out.push(...r.body.notifications);
    if (r.body.next_after === after) return out;
    after = r.body.next_after;
  }
}

// The receiver side of the documented check: HMAC-SHA256 of "<t>.<raw body>" under the secret.
function signatureValid(secret, header, rawBody) {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=')));
  const expected = createHmac('sha256', secret).update(`${parts.t}.${rawBody}`).digest('hex');
  return parts.v1?.length === expected.length && timingSafeEqual(Buffer.from(parts.v1), Buffer.from(expected)) &&
    Math.abs(Date.now() / 1000 - Number(parts.t)) < 300;
}

// A webhook receiver that answers 503 while `down`, else records the delivery and answers 200.
async function receiver() {
  const r = { down: true, refused: 0, received: [] };
  r.server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (r.down) {
        r.refused++;
        res.writeHead(503).end('down');
        return;
      }
      r.received.push({ body, headers: req.headers });
      res.writeHead(200).end('ok'.repeat(100000));  // a large answer still counts: only the status is read
    });
  });
  await new Promise((resolve) => r.server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${r.server.address().port}/hook`;
  return r;
}

test('a webhook down through jobs and a consumer restart later gets every notification once, in order, signed', async () => {
  const net = await network();
  const hook = await receiver();
  try {
    const created = await api(net.consumer, 'POST', '/api/v1/webhooks', { url: hook.url });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const secret = created.body.secret;
    assert.match(secret, /^whsec_[0-9a-f]{64}$/);
    const registeredAfter = created.body.delivered_through;

    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push(await runJob(net.consumer, `before restart ${i}`));
    await waitFor(() => hook.refused > 0, 10000, 'a delivery attempt while the receiver is down');

    await net.consumer.stop('SIGTERM');  // a clean restart in the middle of the outage
    net.consumer = await startConsumer(net, net.consumer.dataDir);
    jobs.push(await runJob(net.consumer, 'after restart'));
    const listed = (await api(net.consumer, 'GET', '/api/v1/webhooks')).body.webhooks;
    assert.equal(listed.length, 1);
    assert.equal(listed[0].enabled, true);
    assert.ok(listed[0].failures > 0, JSON.stringify(listed[0]));
    assert.match(listed[0].last_error, /answered HTTP 503/);
    assert.equal(listed[0].secret, undefined, 'the secret is shown only at registration');

    const expected = await allNotifications(net.consumer, registeredAfter);
    // submitted, started and completed for each job.
    assert.equal(expected.length, 3 * jobs.length, JSON.stringify(expected.map((n) => n.type)));
    hook.down = false;
    await waitFor(() => hook.received.length >= expected.length, 90000, 'every notification delivered');
    await new Promise((r) => setTimeout(r, 1500));  // anything extra (a duplicate) would arrive by now

    const got = hook.received.map((d) => JSON.parse(d.body));
    assert.deepEqual(got.map((n) => n.id), expected.map((n) => n.id), 'every notification once, in order');
    assert.deepEqual(got, expected, 'the bodies are the notifications');
    for (const d of hook.received) {
      assert.ok(signatureValid(secret, d.headers['infernet-signature'], d.body), d.headers['infernet-signature']);
      assert.equal(d.headers['infernet-notification-id'], String(JSON.parse(d.body).id));
      assert.equal(d.headers['content-type'], 'application/json');
    }
    const types = got.filter((n) => n.job_id === jobs[3]).map((n) => n.type);
    assert.deepEqual(types, ['job.submitted', 'job.started', 'job.completed']);
    const after = (await api(net.consumer, 'GET', '/api/v1/webhooks')).body.webhooks[0];
    assert.equal(after.failures, 0);
    assert.equal(after.delivered, expected.length);
  } finally {
    hook.server.close();
    await net.stop();
  }
});

test('infernet watch --all prints the notifications of jobs submitted after it started', async () => {
  const net = await network();
  const children = [];
  try {
    const earlier = await runJob(net.consumer, 'from before the watch');
    const watch = spawn(BIN, ['watch', '--all', '--json', '--api', net.consumer.apiUrl], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(watch);
    let stdout = '';
    let stderr = '';
    watch.stdout.on('data', (d) => { stdout += d; });
    watch.stderr.on('data', (d) => { stderr += d; });
    const exited = new Promise((resolve) => watch.on('exit', (code) => resolve(code)));
    // Jobs submitted before the watch attached are not its to print: wait for it to say it is watching.
    await waitFor(() => stderr.includes('infernet: watching notifications after'), 15000, `the watch to attach (stderr: ${stderr})`);
    const later = await runJob(net.consumer, 'while watching');
    await waitFor(() => stdout.includes('"job.completed"'), 15000, `watch to print the completion (stderr: ${stderr})`);
    watch.kill('SIGINT');
    assert.equal(await within(exited, 15000, 'infernet watch to exit on SIGINT'), 130, stderr);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.every((n) => n.job_id === later), `only the later job: ${stdout}`);
    assert.ok(!stdout.includes(earlier));
    assert.deepEqual(lines.map((n) => n.type), ['job.submitted', 'job.started', 'job.completed']);
    lines.forEach((n, i) => i && assert.ok(n.id > lines[i - 1].id));

    // The human form: one line per notification.
    const human = spawn(BIN, ['watch', '--all', '--types', 'job.completed', '--api', net.consumer.apiUrl], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(human);
    let text = '';
    let humanErr = '';
    human.stdout.on('data', (d) => { text += d; });
    human.stderr.on('data', (d) => { humanErr += d; });
    const humanExited = new Promise((resolve) => human.on('exit', (code) => resolve(code)));
    await waitFor(() => humanErr.includes('infernet: watching notifications after'), 15000, `the watch to attach (stderr: ${humanErr})`);
    const third = await runJob(net.consumer, 'human readable');
    await waitFor(() => text.includes('job.completed'), 15000, 'the human line');
    human.kill('SIGINT');
    assert.equal(await within(humanExited, 15000, 'infernet watch to exit on SIGINT'), 130);
    assert.match(text, new RegExp(`^\\d+ \\S+Z job\\.completed job ${third} model fake-echo cost \\d+ msat\\n$`));
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');  // a failed test leaves no process behind
    await net.stop();
  }
});

function openStream(consumer, after) {
  const url = consumer.apiUrl.replace('http://', 'ws://') + `/api/v1/notifications/stream?after=${after}`;
  const s = { messages: [], ws: new WebSocket(url) };
  s.ws.on('message', (m) => s.messages.push(JSON.parse(m.toString())));
  s.opened = new Promise((resolve, reject) => { s.ws.on('open', resolve); s.ws.on('error', reject); });
  return s;
}

test('the notification WebSocket re-attached with after misses nothing', async () => {
  const net = await network();
  try {
    await runJob(net.consumer, 'first');
    const first = openStream(net.consumer, 0);
    await first.opened;
    await runJob(net.consumer, 'second');
    await waitFor(() => first.messages.length >= 6, 10000, 'six notifications on the first connection');
    const seen = first.messages.slice(0, 4);  // the client stops reading here and goes away
    first.ws.close();
    await runJob(net.consumer, 'while away');
    const second = openStream(net.consumer, seen.at(-1).id);
    await second.opened;
    await runJob(net.consumer, 'after coming back');
    const all = await allNotifications(net.consumer);
    assert.equal(all.length, 12);
    await waitFor(() => seen.length + second.messages.length >= all.length, 10000, 'the rest on the second connection');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual([...seen, ...second.messages].map((n) => n.id), all.map((n) => n.id));
    second.ws.close();

    const bad = new WebSocket(net.consumer.apiUrl.replace('http://', 'ws://') + '/api/v1/notifications/stream?types=nope');
    const code = await new Promise((resolve) => bad.on('close', (c) => resolve(c)));
    assert.equal(code, 4400);
  } finally {
    await net.stop();
  }
});

test('a webhook retry setting out of range stops the node with the setting named', async () => {
  const relay = await startNode({ roles: ['relay'] });
  try {
    for (const bad of [0, 3601]) {
      await assert.rejects(
        startNode({ roles: ['consumer'], settings: { 'node.relays': relay.relayUrl, 'webhooks.retry_max_seconds': bad } }),
        /webhooks\.retry_max_seconds: must be from 1 to 3600/);
    }
  } finally {
    await relay.stop('SIGKILL');
  }
});
