// The SDK's credentials: NIP-98 headers checked with nostr-tools' own validator, the Bearer API key, and the
// exact URL, method and body hash a request is signed with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateSecretKey, getPublicKey, verifyEvent } from 'nostr-tools/pure';
import * as nip98 from 'nostr-tools/nip98';
import * as nip19 from 'nostr-tools/nip19';
import { InfernetClient, InfernetError, nip98Header } from '../src/index.js';

function decodeToken(header) {
  assert.match(header, /^Nostr [A-Za-z0-9+/=]+$/);
  return JSON.parse(Buffer.from(header.slice('Nostr '.length), 'base64').toString('utf8'));
}

// A fetch that records what it was asked and answers `reply`.
function recordingFetch(reply = { jobs: [] }, status = 200) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, ...init });
    return new Response(JSON.stringify(reply), { status, headers: { 'content-type': 'application/json' } });
  };
  return { fetch, calls };
}

test('nip98Header makes a token nostr-tools validates, with the body hash nostr-tools computes', async () => {
  const sk = generateSecretKey();
  const url = 'http://127.0.0.1:7448/api/v1/jobs';
  const body = { model: 'm', input: { prompt: 'hi' } };
  const header = await nip98Header({ secretKey: sk, url, method: 'post', body: JSON.stringify(body) });
  assert.equal(await nip98.validateToken(header, url, 'POST'), true);
  const event = decodeToken(header);
  assert.equal(event.kind, 27235);
  assert.equal(event.pubkey, getPublicKey(sk));
  assert.ok(verifyEvent(event));
  assert.deepEqual(event.tags.find((t) => t[0] === 'method'), ['method', 'POST']);
  assert.equal(await nip98.validateEvent(event, url, 'POST', body), true, 'payload tag matches the body');
  await assert.rejects(nip98.validateToken(header, url + '?x=1', 'POST'), /url tag invalid/);
  await assert.rejects(nip98.validateToken(header, url, 'GET'), /method tag invalid/);
  assert.equal(await nip98.validateEvent(event, url, 'POST', { model: 'other' }).catch(() => false), false);

  const bare = decodeToken(await nip98Header({ secretKey: sk, url, method: 'GET' }));
  assert.equal(bare.tags.some((t) => t[0] === 'payload'), false, 'no payload tag without a body');
});

test('the client signs every request with NIP-98 when given a secret key, in hex, nsec or bytes', async () => {
  const sk = generateSecretKey();
  const pk = getPublicKey(sk);
  for (const form of [Buffer.from(sk).toString('hex'), nip19.nsecEncode(sk), sk]) {
    const { fetch, calls } = recordingFetch({ jobs: [] });
    const client = new InfernetClient({ nostrSecretKey: form, nostrPublicKey: nip19.npubEncode(pk), apiKey: 'unused', baseUrl: 'http://127.0.0.1:9/', fetch });
    await client.listJobs({ state: 'running', limit: 2 });
    assert.equal(calls[0].url, 'http://127.0.0.1:9/api/v1/jobs?state=running&limit=2');
    const header = calls[0].headers.authorization;
    assert.equal(await nip98.validateToken(header, calls[0].url, 'GET'), true);
    assert.equal(decodeToken(header).pubkey, pk);
  }
  const { fetch, calls } = recordingFetch({ id: 'x' });
  const client = new InfernetClient({ nostrSecretKey: sk, baseUrl: 'http://127.0.0.1:9', fetch });
  await client.createInferenceJob({ model: 'm', input: { prompt: 'p' } });
  const event = decodeToken(calls[0].headers.authorization);
  assert.equal(await nip98.validateEvent(event, 'http://127.0.0.1:9/api/v1/jobs', 'POST', JSON.parse(calls[0].body)), true);
});

test('the API key goes as a Bearer token; a public key not matching the secret key is refused', async () => {
  const { fetch, calls } = recordingFetch({ models: [] });
  const client = new InfernetClient({ apiKey: 'k-123', nostrPublicKey: 'npub1whatever', fetch });
  assert.deepEqual(await client.listModels(), []);
  assert.equal(calls[0].headers.authorization, 'Bearer k-123');
  assert.equal(calls[0].url, 'http://127.0.0.1:7448/api/v1/models');

  const other = getPublicKey(generateSecretKey());
  const mismatched = new InfernetClient({ nostrSecretKey: generateSecretKey(), nostrPublicKey: other, fetch });
  await assert.rejects(mismatched.listModels(), (err) => err instanceof InfernetError && err.field === 'nostrPublicKey');
  assert.equal(calls.length, 1, 'nothing was sent with the wrong key');

  assert.throws(() => new InfernetClient({ baseUrl: 'ftp://x' }), (err) => err.field === 'baseUrl');
  assert.throws(() => new InfernetClient({ apiKey: 'a\nb' }), (err) => err.field === 'apiKey');
  const bad = new InfernetClient({ nostrSecretKey: 'not-a-key', fetch });
  await assert.rejects(bad.listModels(), (err) => err.field === 'nostrSecretKey');
});

test('an API error becomes an InfernetError with status, code, message and field', async () => {
  const { fetch } = recordingFetch({ error: { code: 'invalid_input', message: 'temperature: must be a number', field: 'temperature' } }, 400);
  const client = new InfernetClient({ fetch });
  const err = await client.createInferenceJob({ model: 'm', temperature: 'hot' }).catch((e) => e);
  assert.ok(err instanceof InfernetError);
  assert.equal(err.status, 400);
  assert.equal(err.code, 'invalid_input');
  assert.equal(err.field, 'temperature');
  assert.equal(err.message, 'temperature: must be a number');
  const down = new InfernetClient({ fetch: async () => { throw new TypeError('fetch failed'); } });
  const net = await down.getJob('abc').catch((e) => e);
  assert.equal(net.code, 'network');
  assert.equal(net.status, 0);
  await assert.rejects(down.getJob('../x'), (e) => e.field === 'id');
});
