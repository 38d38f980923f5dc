// Interop with nostr-tools (npm), both ways: what infernet signs, encrypts, encodes and authorizes, nostr-tools
// accepts, and the other way round.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finalizeEvent, verifyEvent, getEventHash, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import * as nip44 from 'nostr-tools/nip44';
import * as nip19 from 'nostr-tools/nip19';
import * as nip98 from 'nostr-tools/nip98';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { Identity, run } from './infernet_cli.mjs';
import { trickyCases } from './tricky_cases.mjs';

const ours = new Identity(bytesToHex(generateSecretKey()));
const theirSecret = generateSecretKey();
const theirPubkey = getPublicKey(theirSecret);
after(() => ours.dispose());

test('events signed by infernet verify in nostr-tools with identical ids', () => {
  for (const c of trickyCases()) {
    const template = JSON.stringify({ kind: c.kind, tags: c.tags, content: c.content, created_at: 1700000000 });
    const ev = JSON.parse(ours.runOk(['event', 'sign'], template));
    assert.equal(ev.pubkey, ours.pubkey, c.name);
    assert.equal(ev.content, c.content, c.name);
    assert.deepEqual(ev.tags, c.tags, c.name);
    assert.equal(getEventHash(ev), ev.id, `id differs for ${c.name}`);
    assert.equal(verifyEvent(ev), true, `nostr-tools rejects ${c.name}`);
  }
});

test('events signed by nostr-tools verify in infernet; tampered ones are refused with the reason', () => {
  for (const c of trickyCases()) {
    const ev = finalizeEvent({ kind: c.kind, tags: c.tags, content: c.content, created_at: 1700000000 }, theirSecret);
    const r = ours.run(['event', 'verify'], JSON.stringify(ev));
    assert.equal(r.code, 0, `${c.name}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(ev.id));
  }
  const ev = finalizeEvent({ kind: 1, tags: [], content: 'original', created_at: 1700000000 }, theirSecret);
  let r = ours.run(['event', 'verify'], JSON.stringify({ ...ev, content: 'changed' }));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /id does not match/);
  const badSig = ev.sig.slice(0, 10) + (ev.sig[10] === '0' ? '1' : '0') + ev.sig.slice(11);
  r = ours.run(['event', 'verify'], JSON.stringify({ ...ev, sig: badSig }));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /signature/);
  r = ours.run(['event', 'verify'], JSON.stringify({ ...ev, id: ev.id.toUpperCase() }));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /id: must be 64 lowercase hex/);
  r = ours.run(['event', 'verify'], '{"kind":1,');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /invalid JSON/);
});

const plaintexts = [
  'a',
  'héllo wörld 🎉 \u0000 control',
  'x'.repeat(1024),
  'y'.repeat(65535),
  'z'.repeat(65536), // first length with the extended 6-byte prefix
  '€'.repeat(70000), // 210000 bytes of multi-byte UTF-8
];

test('NIP-44 payloads from nostr-tools decrypt in infernet', () => {
  const key = nip44.v2.utils.getConversationKey(theirSecret, ours.pubkey);
  for (const p of plaintexts) {
    const payload = nip44.v2.encrypt(p, key);
    const r = ours.run(['nip44', 'decrypt', '--from', theirPubkey], payload);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, p, `length ${p.length}`);
  }
});

test('NIP-44 payloads from infernet decrypt in nostr-tools', () => {
  const key = nip44.v2.utils.getConversationKey(theirSecret, ours.pubkey);
  for (const p of plaintexts) {
    const payload = ours.runOk(['nip44', 'encrypt', '--to', nip19.npubEncode(theirPubkey)], p).trim();
    assert.equal(nip44.v2.decrypt(payload, key), p, `length ${p.length}`);
  }
});

test('tampered or truncated NIP-44 payloads are refused by infernet', () => {
  const key = nip44.v2.utils.getConversationKey(theirSecret, ours.pubkey);
  const payload = nip44.v2.encrypt('secret', key);
  const flip = (s, i) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  const cases = [
    [flip(payload, 60), /invalid MAC/],
    [payload.slice(0, 100), /payload/],
    ['#' + payload.slice(1), /unknown encryption version/],
  ];
  for (const [bad, why] of cases) {
    const r = ours.run(['nip44', 'decrypt', '--from', theirPubkey], bad);
    assert.equal(r.code, 1);
    assert.match(r.stderr, why);
  }
});

test('NIP-98 tokens are accepted both ways', async () => {
  const url = 'http://127.0.0.1:8080/api/v1/jobs?limit=5';
  const body = { model: 'tiny', input: { prompt: 'hi' } };
  const bodyFile = join(mkdtempSync(join(tmpdir(), 'infernet-nip98-')), 'body.json');
  writeFileSync(bodyFile, JSON.stringify(body));

  // nostr-tools -> infernet
  const token = await nip98.getToken(url, 'POST', (e) => finalizeEvent(e, theirSecret), true, body);
  let r = ours.run(['nip98', 'verify', '--url', url, '--method', 'post', '--body-file', bodyFile], token);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(nip19.npubEncode(theirPubkey)));
  r = ours.run(['nip98', 'verify', '--url', url + '&x', '--method', 'POST', '--body-file', bodyFile], token);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /URL/);

  // infernet -> nostr-tools
  const ourToken = ours.runOk(['nip98', 'token', '--url', url, '--method', 'POST', '--body-file', bodyFile]).trim();
  assert.ok(ourToken.startsWith('Nostr '));
  assert.equal(await nip98.validateToken(ourToken, url, 'POST'), true);
  const event = await nip98.unpackEventFromToken(ourToken);
  assert.equal(await nip98.validateEvent(event, url, 'POST', body), true);
  await assert.rejects(nip98.validateToken(ourToken, url, 'GET'));
});

test('NIP-19 strings are identical both ways', () => {
  const id = bytesToHex(generateSecretKey());
  const relays = ['wss://relay.example.com', 'wss://r2.example/path?x=1'];
  const expectations = [
    [['npub', theirPubkey], nip19.npubEncode(theirPubkey)],
    [['nsec', bytesToHex(theirSecret)], nip19.nsecEncode(theirSecret)],
    [['note', id], nip19.noteEncode(id)],
    [['nprofile', '--pubkey', theirPubkey, ...relays.flatMap((r) => ['--relay', r])],
      nip19.nprofileEncode({ pubkey: theirPubkey, relays })],
    [['nevent', '--id', id, '--author', theirPubkey, '--kind', '5050', '--relay', relays[0]],
      nip19.neventEncode({ id, author: theirPubkey, kind: 5050, relays: [relays[0]] })],
    [['nevent', '--id', id], nip19.neventEncode({ id })],
    [['naddr', '--identifier', 'provider-ünïcode', '--pubkey', theirPubkey, '--kind', '31990', ...relays.flatMap((r) => ['--relay', r])],
      nip19.naddrEncode({ identifier: 'provider-ünïcode', pubkey: theirPubkey, kind: 31990, relays })],
  ];
  for (const [args, expected] of expectations) {
    const encoded = ours.runOk(['nip19', 'encode', ...args]).trim();
    assert.equal(encoded, expected, args.join(' '));
    // And infernet decodes nostr-tools' string to the same data nostr-tools does.
    const decoded = JSON.parse(ours.runOk(['nip19', 'decode', expected]));
    const theirs = nip19.decode(expected);
    assert.equal(decoded.type, theirs.type);
    // nostr-tools leaves absent optional fields as undefined; a JSON round trip drops them as our output does.
    const data = theirs.data instanceof Uint8Array ? bytesToHex(theirs.data) : JSON.parse(JSON.stringify(theirs.data));
    assert.deepEqual(decoded.data, typeof data === 'object' ? { relays: [], ...data } : data, expected);
  }
  const bad = nip19.npubEncode(theirPubkey).slice(0, -1) + 'q';
  const r = run(['nip19', 'decode', bad === nip19.npubEncode(theirPubkey) ? bad.slice(0, -1) + 'p' : bad]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /checksum/);
});

test('a key file readable by others is refused', () => {
  const id = new Identity(bytesToHex(generateSecretKey()));
  try {
    chmodSync(join(id.dataDir, 'identity.key'), 0o644);
    const r = id.run(['event', 'sign', '--kind', '1', '--content', 'x']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /chmod 600/);
  } finally {
    id.dispose();
  }
});
