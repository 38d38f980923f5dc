// Our relay pool (through `infernet publish` and `infernet req`) against a third-party relay,
// @nostr-relay/core from npm, and against our own relay with NIP-42 AUTH.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { bytesToHex } from '@noble/hashes/utils.js';
import { BIN, Identity } from './infernet_cli.mjs';
import { startRelay, tempDir } from './relay_process.mjs';

useWebSocketImplementation(WebSocket);
const here = dirname(fileURLToPath(import.meta.url));
const now = () => Math.floor(Date.now() / 1000);
const me = new Identity(bytesToHex(generateSecretKey()));
after(() => me.dispose());

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function startPeer(dbPath, port = 0) {
  const proc = spawn(process.execPath, [join(here, 'peer_relay.mjs'), dbPath, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => { out += d; const m = out.match(/listening on (ws:\/\/\S+)/); if (m) resolve(m[1]); });
    proc.on('exit', (code) => reject(new Error(`peer relay exited ${code}: ${err}`)));
  });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  return { url, stop: async (signal = 'SIGTERM') => { proc.kill(signal); await exited; } };
}

// `infernet req` that keeps running; resolves lines as they arrive.
function follow(relays, filter) {
  const args = ['req', '--follow', ...relays.flatMap((r) => ['--relay', r]), JSON.stringify(filter)];
  const proc = spawn(BIN, args, { env: { ...process.env, INFERNET_DATA_DIR: me.dataDir }, stdio: ['ignore', 'pipe', 'pipe'] });
  const events = [];
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) { events.push(JSON.parse(buf.slice(0, nl))); buf = buf.slice(nl + 1); }
  });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  return {
    events,
    async waitFor(n, ms = 15000) {
      const end = Date.now() + ms;
      while (events.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      return events;
    },
    stop: async () => { proc.kill('SIGTERM'); await exited; },
  };
}

const sign = (key, content, extra = {}) => finalizeEvent({ kind: 1, created_at: now(), tags: [], content, ...extra }, key);

test('publish and query a third-party relay (@nostr-relay/core) through the pool', async () => {
  const peer = await startPeer(join(tempDir(), 'peer.db'));
  try {
    const key = generateSecretKey();
    const events = [sign(key, 'one'), sign(key, 'two', { created_at: now() - 5 })];
    const r = me.run(['publish', '--relay', peer.url], events.map((e) => JSON.stringify(e)).join('\n'));
    assert.equal(r.code, 0, r.stderr);
    for (const e of events) assert.match(r.stdout, new RegExp(`${e.id} ${peer.url} accepted`));
    const out = me.runOk(['req', '--relay', peer.url, JSON.stringify({ authors: [getPublicKey(key)] })]);
    const got = out.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(got.map((e) => e.id).sort(), events.map((e) => e.id).sort());
  } finally {
    await peer.stop();
  }
});

test('an event on two relays is delivered once', async () => {
  const peer = await startPeer(join(tempDir(), 'peer.db'));
  const ours = await startRelay();
  try {
    const key = generateSecretKey();
    const shared = sign(key, 'on both relays');
    const onlyOurs = sign(key, 'only on ours');
    for (const url of [peer.url, ours.url]) {
      const c = await Relay.connect(url);
      await c.publish(shared);
      if (url === ours.url) await c.publish(onlyOurs);
      c.close();
    }
    const out = me.runOk(['req', '--relay', peer.url, '--relay', ours.url, JSON.stringify({ authors: [getPublicKey(key)] })]);
    const ids = out.trim().split('\n').map((l) => JSON.parse(l).id);
    assert.equal(ids.length, 2, out);
    assert.deepEqual(ids.sort(), [shared.id, onlyOurs.id].sort());
  } finally {
    await peer.stop();
    await ours.stop();
  }
});

test('after the relay restarts, the pool reconnects and misses nothing published while it was away', async () => {
  const db = join(tempDir(), 'peer.db');
  const port = await freePort();
  let peer = await startPeer(db, port);
  const key = generateSecretKey();
  const sub = follow([peer.url], { authors: [getPublicKey(key)] });
  try {
    const first = sign(key, 'before the restart', { created_at: now() - 2 });
    let c = await Relay.connect(peer.url);
    await c.publish(first);
    c.close();
    assert.deepEqual((await sub.waitFor(1)).map((e) => e.id), [first.id]);

    await peer.stop('SIGKILL');
    peer = await startPeer(db, port);
    // Published at once, before the pool has had time to reconnect (its first retry waits at least 125 ms).
    c = await Relay.connect(peer.url);
    const missed = [sign(key, 'while away 1'), sign(key, 'while away 2')];
    for (const e of missed) await c.publish(e);
    const later = sign(key, 'after reconnecting');
    await new Promise((r) => setTimeout(r, 1500));
    await c.publish(later);
    c.close();

    const got = await sub.waitFor(4);
    await new Promise((r) => setTimeout(r, 300));
    const ids = sub.events.map((e) => e.id);
    assert.equal(ids.length, 4, 'each event exactly once: ' + JSON.stringify(sub.events.map((e) => e.content)));
    assert.deepEqual(new Set(ids), new Set([first.id, ...missed.map((e) => e.id), later.id]));
    assert.equal(got.length, 4);
  } finally {
    await sub.stop();
    await peer.stop();
  }
});

test('the pool answers NIP-42 AUTH with the node key and retries what was refused', async () => {
  const priv = await startRelay({ settings: { 'relay.auth_required': 'true', 'relay.allowed_pubkeys': me.pubkey } });
  try {
    const e = JSON.parse(me.runOk(['event', 'sign', '--kind', '1', '--content', 'members only']));
    const r = me.run(['publish', '--relay', priv.url], JSON.stringify(e));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, / accepted/);
    const out = me.runOk(['req', '--relay', priv.url, JSON.stringify({ ids: [e.id] })]);
    assert.equal(JSON.parse(out.trim()).id, e.id);
  } finally {
    await priv.stop();
  }
});

test('a relay that cannot be reached is reported, not waited on forever', () => {
  const key = generateSecretKey();
  const r = me.run(['publish', '--relay', 'ws://127.0.0.1:9', '--timeout', '2'], JSON.stringify(sign(key, 'x')));
  assert.equal(r.code, 1);
  assert.match(r.stdout, /refused timeout: /);
});
