// nostr-tools (npm) as the client of our relay: NIP-01 publish/subscribe semantics, NIP-09, NIP-11, NIP-40,
// NIP-42, limits, faults, and durability across SIGKILL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { startRelay, tempDir } from './relay_process.mjs';

useWebSocketImplementation(WebSocket);

const sk = generateSecretKey();
const pk = getPublicKey(sk);
const now = () => Math.floor(Date.now() / 1000);
const sign = (t, key = sk) => finalizeEvent({ created_at: now(), tags: [], content: '', ...t }, key);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Waits until `cond()` holds, polling; the sanitizer build on a loaded machine can be many times slower than a
// release build, so tests wait for what they need instead of sleeping a fixed time.
async function until(cond, ms = 10000) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(20);
  return cond();
}

let relay;
before(async () => { relay = await startRelay(); });
after(async () => { await relay.stop(); });

// Subscribes, collects stored events until EOSE, closes.
async function query(client, filters) {
  return new Promise((resolve) => {
    const events = [];
    const sub = client.subscribe(filters, {
      onevent: (e) => events.push(e),
      oneose: () => { sub.close(); resolve(events); },
    });
  });
}

// A raw WebSocket for what nostr-tools will not send: malformed frames, floods.
async function raw(url) {
  const ws = new WebSocket(url);
  const inbox = [];
  const waiters = [];
  ws.on('message', (d) => {
    const msg = JSON.parse(d.toString());
    const w = waiters.findIndex((x) => x.pred(msg));
    if (w >= 0) waiters.splice(w, 1)[0].resolve(msg);
    else inbox.push(msg);
  });
  await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
  return {
    ws,
    send: (m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m)),
    next(pred = () => true, ms = 5000) {
      const i = inbox.findIndex(pred);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
      return new Promise((resolve, reject) => {
        const entry = { pred, resolve };
        waiters.push(entry);
        setTimeout(() => { const k = waiters.indexOf(entry); if (k >= 0) { waiters.splice(k, 1); reject(new Error('timed out')); } }, ms);
      });
    },
    close: () => ws.close(),
  };
}

test('publish, subscribe, EOSE, and live delivery', async () => {
  const a = await Relay.connect(relay.url);
  const b = await Relay.connect(relay.url);
  const live = [];
  let eose = false;
  const tag = 'live-' + Math.random();
  const sub = b.subscribe([{ kinds: [1], '#t': [tag] }], { onevent: (e) => live.push(e), oneose: () => { eose = true; } });
  assert.equal(await until(() => eose), true, 'EOSE arrives');
  const ev = sign({ kind: 1, tags: [['t', tag]], content: 'hello relay' });
  assert.equal(await a.publish(ev), '');
  await until(() => live.length > 0);
  await sleep(50); // a second delivery would show up here
  assert.equal(live.length, 1);
  assert.equal(live[0].id, ev.id);
  assert.deepEqual((await query(a, [{ ids: [ev.id] }])).map((e) => e.id), [ev.id]);
  assert.match(await a.publish(ev), /^duplicate: /); // a duplicate is acknowledged with OK true
  sub.close();
  a.close();
  b.close();
});

test('limit returns the newest first, ties by lowest id', async () => {
  const client = await Relay.connect(relay.url);
  const key = generateSecretKey();
  const base = now() - 1000;
  const events = [];
  for (let i = 0; i < 10; i++) events.push(sign({ kind: 1, created_at: base + (i % 5), content: `n${i}` }, key));
  for (const e of events) await client.publish(e);
  const got = await query(client, [{ authors: [getPublicKey(key)], limit: 4 }]);
  const expected = [...events].sort((x, y) => y.created_at - x.created_at || (x.id < y.id ? -1 : 1)).slice(0, 4);
  assert.deepEqual(got.map((e) => e.id), expected.map((e) => e.id));
  client.close();
});

test('replaceable and addressable events keep only the latest; equal times keep the lowest id', async () => {
  const client = await Relay.connect(relay.url);
  const key = generateSecretKey();
  const author = getPublicKey(key);
  const t = now() - 100;
  await client.publish(sign({ kind: 0, created_at: t, content: '{"name":"old"}' }, key));
  await client.publish(sign({ kind: 0, created_at: t + 10, content: '{"name":"new"}' }, key));
  // An older version arriving late is acknowledged as a duplicate and not stored.
  const reason = await client.publish(sign({ kind: 0, created_at: t + 5, content: '{"name":"late"}' }, key));
  assert.match(reason, /^duplicate:/);
  let got = await query(client, [{ kinds: [0], authors: [author] }]);
  assert.deepEqual(got.map((e) => e.content), ['{"name":"new"}']);

  const x = sign({ kind: 10002, created_at: t, content: 'x' }, key);
  const y = sign({ kind: 10002, created_at: t, content: 'y' }, key);
  await client.publish(x);
  await client.publish(y);
  got = await query(client, [{ kinds: [10002], authors: [author] }]);
  assert.deepEqual(got.map((e) => e.id), [x.id < y.id ? x.id : y.id]);

  await client.publish(sign({ kind: 30078, created_at: t, tags: [['d', 'a']], content: 'a1' }, key));
  await client.publish(sign({ kind: 30078, created_at: t + 1, tags: [['d', 'a']], content: 'a2' }, key));
  await client.publish(sign({ kind: 30078, created_at: t, tags: [['d', 'b']], content: 'b1' }, key));
  got = await query(client, [{ kinds: [30078], authors: [author] }]);
  assert.deepEqual(got.map((e) => e.content).sort(), ['a2', 'b1']);
  client.close();
});

test('ephemeral events reach live subscribers and are never stored', async () => {
  const a = await Relay.connect(relay.url);
  const b = await Relay.connect(relay.url);
  const key = generateSecretKey();
  const live = [];
  let eose = false;
  b.subscribe([{ kinds: [20001], authors: [getPublicKey(key)] }], { onevent: (e) => live.push(e), oneose: () => { eose = true; } });
  assert.equal(await until(() => eose), true, 'EOSE arrives');
  const ev = sign({ kind: 20001, content: 'progress 50%' }, key);
  await a.publish(ev);
  await until(() => live.length > 0);
  assert.deepEqual(live.map((e) => e.id), [ev.id]);
  assert.deepEqual(await query(a, [{ ids: [ev.id] }]), []);
  a.close();
  b.close();
});

test('expired events are refused and expiring ones disappear', async () => {
  const client = await Relay.connect(relay.url);
  await assert.rejects(client.publish(sign({ kind: 1, tags: [['expiration', String(now() - 1)]] })), /invalid: event has expired/);
  // Four seconds of life: enough to be stored and read back on a slow sanitizer build.
  const soon = sign({ kind: 1, tags: [['expiration', String(now() + 4)]], content: 'short-lived' });
  await client.publish(soon);
  assert.equal((await query(client, [{ ids: [soon.id] }])).length, 1);
  await sleep(4100);
  let left = 1;
  for (let i = 0; i < 20 && left > 0; i++) {
    left = (await query(client, [{ ids: [soon.id] }])).length;
    if (left > 0) await sleep(200);
  }
  assert.equal(left, 0);
  client.close();
});

test('deletion requests remove the author\'s events, not others\', and block re-publishing', async () => {
  const client = await Relay.connect(relay.url);
  const mine = sign({ kind: 1, content: 'regret' });
  const other = sign({ kind: 1, content: 'someone else' }, generateSecretKey());
  await client.publish(mine);
  await client.publish(other);
  await client.publish(sign({ kind: 5, tags: [['e', mine.id], ['e', other.id]] }));
  assert.deepEqual(await query(client, [{ ids: [mine.id] }]), []);
  assert.equal((await query(client, [{ ids: [other.id] }])).length, 1);
  await assert.rejects(client.publish(mine), /blocked: /);
  client.close();
});

test('a bad signature, a forged id and malformed input get the documented answers', async () => {
  const r = await raw(relay.url);
  const ev = sign({ kind: 1, content: 'genuine' });
  r.send(['EVENT', { ...ev, sig: ev.sig.replace(/^./, ev.sig[0] === '0' ? '1' : '0') }]);
  let ok = await r.next((m) => m[0] === 'OK');
  assert.deepEqual(ok.slice(0, 3), ['OK', ev.id, false]);
  assert.match(ok[3], /^invalid: signature/);
  r.send(['EVENT', { ...ev, content: 'forged' }]);
  ok = await r.next((m) => m[0] === 'OK');
  assert.match(ok[3], /^invalid: id does not match/);
  r.send('this is not json');
  assert.match((await r.next((m) => m[0] === 'NOTICE'))[1], /invalid JSON/);
  r.send(['REQ', 'bad', { kinds: 'x' }]);
  const closed = await r.next((m) => m[0] === 'CLOSED');
  assert.equal(closed[1], 'bad');
  assert.match(closed[2], /^invalid: /);
  r.send(['EVENT', { ...ev, kind: -1 }]);
  ok = await r.next((m) => m[0] === 'OK');
  assert.match(ok[3], /^invalid: kind/);
  // Still answering: a valid event after all that is accepted.
  r.send(['EVENT', ev]);
  ok = await r.next((m) => m[0] === 'OK' && m[2] === true);
  assert.equal(ok[1], ev.id);
  r.close();
});

test('an oversized message closes only that connection', async () => {
  const big = await raw(relay.url);
  const bystander = await raw(relay.url);
  const closed = new Promise((resolve) => big.ws.on('close', (code) => resolve(code)));
  big.send(['EVENT', sign({ kind: 1, content: 'x'.repeat(200 * 1024) })]);
  assert.equal(await closed, 1009);
  const ev = sign({ kind: 1, content: 'still here' });
  bystander.send(['EVENT', ev]);
  assert.equal((await bystander.next((m) => m[0] === 'OK'))[2], true);
  bystander.close();
});

test('a flood is rate-limited with the documented prefix and the relay keeps serving', async () => {
  // A relay of its own with a low limit (20/s, bursts of 40), so that even a slow sanitizer build takes the
  // flood in far faster than the token bucket refills.
  const slow = await startRelay({ settings: { 'relay.max_events_per_second': 20 } });
  try {
    const r = await raw(slow.url);
    const key = generateSecretKey();
    const n = 200;
    // Signed first, so the flood arrives faster than the token bucket refills.
    const flood = Array.from({ length: n }, (_, i) => sign({ kind: 1, content: `flood ${i}` }, key));
    for (const e of flood) r.send(['EVENT', e]);
    let limited = 0;
    let accepted = 0;
    for (let i = 0; i < n; i++) {
      const ok = await r.next((m) => m[0] === 'OK', 20000);
      if (ok[2]) accepted++;
      else if (/^rate-limited: /.test(ok[3])) limited++;
    }
    assert.equal(accepted + limited, n, 'every refusal is rate-limited');
    assert.ok(limited > 0, 'some events are rate-limited');
    assert.ok(accepted >= 40, `the burst is accepted (${accepted})`);
    const other = await Relay.connect(slow.url);
    assert.equal(await other.publish(sign({ kind: 1, content: 'after the flood' })), '');
    other.close();
    r.close();
  } finally {
    await slow.stop();
  }
});

test('too many subscriptions and too many filters are refused', async () => {
  const r = await raw(relay.url);
  for (let i = 0; i < 50; i++) r.send(['REQ', `s${i}`, { kinds: [1], limit: 0 }]);
  for (let i = 0; i < 50; i++) await r.next((m) => m[0] === 'EOSE' && m[1] === `s${i}`);
  r.send(['REQ', 's50', { kinds: [1] }]);
  assert.match((await r.next((m) => m[0] === 'CLOSED'))[2], /^blocked: /);
  r.send(['REQ', 's0', ...Array.from({ length: 11 }, () => ({}))]);
  assert.match((await r.next((m) => m[0] === 'CLOSED' && m[1] === 's0'))[2], /too many filters/);
  r.close();
});

test('NIP-11 document and Prometheus metrics over HTTP', async () => {
  const info = await (await fetch(relay.httpUrl + '/', { headers: { Accept: 'application/nostr+json' } })).json();
  assert.ok(info.supported_nips.includes(1) && info.supported_nips.includes(11) && info.supported_nips.includes(42));
  assert.equal(info.limitation.max_subscriptions, 50);
  assert.equal(info.limitation.max_filters, 10);
  assert.equal(info.limitation.max_message_length, 131072);
  const metrics = await (await fetch(relay.httpUrl + '/metrics')).text();
  assert.match(metrics, /^infernet_relay_events_stored_total \d+$/m);
  assert.match(metrics, /^infernet_relay_rejected_total\{reason="invalid"\} \d+$/m);
});

test('NIP-42: a relay that requires AUTH refuses until nostr-tools authenticates', async () => {
  const member = generateSecretKey();
  const priv = await startRelay({ settings: { 'relay.auth_required': 'true', 'relay.allowed_pubkeys': getPublicKey(member) } });
  try {
    const anon = await Relay.connect(priv.url);
    await assert.rejects(anon.publish(sign({ kind: 1, content: 'let me in' })), /^Error: auth-required: /);
    anon.close();

    const client = await Relay.connect(priv.url);
    assert.ok(await until(() => client.challenge !== undefined), 'the relay sends an AUTH challenge');
    await client.auth((t) => finalizeEvent(t, member));
    assert.equal(await client.publish(sign({ kind: 1, content: 'member post' }, member)), '');
    assert.equal((await query(client, [{ authors: [getPublicKey(member)] }])).length, 1);
    client.close();

    const stranger = await Relay.connect(priv.url);
    assert.ok(await until(() => stranger.challenge !== undefined), 'the relay sends an AUTH challenge');
    await stranger.auth((t) => finalizeEvent(t, generateSecretKey()));
    await assert.rejects(stranger.publish(sign({ kind: 1, content: 'not a member' })), /restricted: /);
    stranger.close();
  } finally {
    await priv.stop();
  }
});

test('OK true means durable: a relay killed with SIGKILL right after OK still has the events', async () => {
  const dataDir = tempDir();
  const first = await startRelay({ dataDir, settings: { 'relay.max_events_per_second': 100000 } });
  const client = await Relay.connect(first.url);
  const key = generateSecretKey();
  const events = Array.from({ length: 300 }, (_, i) => sign({ kind: 1, content: `durable ${i}` }, key));
  await Promise.all(events.map((e) => client.publish(e)));
  await first.stop('SIGKILL');
  const second = await startRelay({ dataDir });
  try {
    const c2 = await Relay.connect(second.url);
    const got = await query(c2, [{ authors: [getPublicKey(key)] }]);
    assert.equal(got.length, events.length);
    c2.close();
  } finally {
    await second.stop();
  }
});

test('SIGTERM stops the relay cleanly', async () => {
  const r = await startRelay();
  const { code } = await r.stop('SIGTERM');
  assert.equal(code, 0);
});
