// The local API's authentication against a real `infernet node --consumer`: API keys made with the CLI,
// NIP-98 tokens made with nostr-tools, WebSocket access tokens, rate limits and CORS (docs/api.md,
// "Authentication").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { getToken } from 'nostr-tools/nip98';
import * as nip19 from 'nostr-tools/nip19';
import WebSocket from 'ws';
import { startNode } from './node_process.mjs';
import { runAsync } from './infernet_cli.mjs';

async function call(node, method, path, { key, authorization, body, headers = {} } = {}) {
  const h = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  if (authorization) h.authorization = authorization;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(node.apiUrl + path, { method, headers: h, body });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = { raw: text };
  }
  return { status: res.status, headers: res.headers, body: json };
}

async function apikey(node, ...args) {
  const r = await runAsync(['--data-dir', node.dataDir, 'apikey', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

async function createKey(node, scope) {
  return JSON.parse(await apikey(node, 'create', '--scope', scope, '--name', `test-${scope}`, '--json'));
}

const JOB = JSON.stringify({ model: 'fake-echo', prompt: 'hi', max_tokens: 2 });

test('the job commands send config api.key (INFERNET_API_KEY), on requests and on streams', async () => {
  const node = await startNode({ roles: ['relay', 'consumer'], settings: { 'api.auth': 'required' } });
  try {
    const { key } = await createKey(node, 'submit');
    const refused = await runAsync(['jobs', '--api', node.apiUrl]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /missing credentials/);
    const listed = await runAsync(['jobs', '--api', node.apiUrl, '--json'], { env: { INFERNET_API_KEY: key } });
    assert.equal(listed.code, 0, listed.stderr);
    const submitted = await runAsync(['submit', '--api', node.apiUrl, '--model', 'fake-echo', '--prompt', 'hi', '--json'],
      { env: { INFERNET_API_KEY: key } });
    assert.equal(submitted.code, 0, submitted.stderr);
    const id = JSON.parse(submitted.stdout).id;
    // The stream takes the key as access_token: cancel the job, and watch follows it to its end.
    assert.equal((await runAsync(['cancel', '--api', node.apiUrl, id], { env: { INFERNET_API_KEY: key } })).code, 0);
    const watched = await runAsync(['watch', '--api', node.apiUrl, id], { env: { INFERNET_API_KEY: key } });
    assert.equal(watched.code, 1, watched.stderr);
    assert.match(watched.stderr, /canceled/);
  } finally {
    await node.stop();
  }
});

test('API keys from the CLI: accepted, scoped, and refused once revoked', async () => {
  const node = await startNode({ roles: ['relay', 'consumer'], settings: { 'api.auth': 'required' } });
  try {
    const none = await call(node, 'GET', '/api/v1/jobs');
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'unauthorized');
    assert.equal(none.body.error.message, 'missing credentials');
    assert.match(none.headers.get('www-authenticate'), /Bearer/);

    const submitter = await createKey(node, 'submit');
    assert.match(submitter.key, /^inf_[0-9a-f]{64}$/);
    const reader = await createKey(node, 'read');

    assert.equal((await call(node, 'GET', '/api/v1/jobs', { key: reader.key })).status, 200);
    const refused = await call(node, 'POST', '/api/v1/jobs', { key: reader.key, body: JOB });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'insufficient_scope');
    const made = await call(node, 'POST', '/api/v1/jobs', { key: submitter.key, body: JOB });
    assert.equal(made.status, 201, JSON.stringify(made.body));

    const wrong = await call(node, 'GET', '/api/v1/jobs', { key: 'inf_' + '0'.repeat(64) });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.message, 'unknown or revoked API key');

    const listed = JSON.parse(await apikey(node, 'list', '--json')).keys;
    assert.equal(listed.length, 2);
    assert.ok(listed.every((k) => !JSON.stringify(k).includes(submitter.key.slice(4))), 'list never shows a key');
    assert.ok(listed.find((k) => k.id === submitter.id).last_used_at > 0, 'last use is recorded');

    // Revoked while the node runs: refused at the next request, no restart.
    assert.equal((await apikey(node, 'revoke', submitter.id)).trim(), `revoked ${submitter.id}`);
    const revoked = await call(node, 'POST', '/api/v1/jobs', { key: submitter.key, body: JOB });
    assert.equal(revoked.status, 401);
    assert.equal(revoked.body.error.message, 'unknown or revoked API key');
    const jobs = await call(node, 'GET', '/api/v1/jobs', { key: reader.key });
    assert.equal(jobs.body.jobs.length, 1, 'refused requests stored nothing');
  } finally {
    await node.stop('SIGKILL');
  }
});

test('NIP-98 tokens from nostr-tools: accepted once, a replay is refused', async () => {
  const sk = generateSecretKey();
  const npub = nip19.npubEncode(getPublicKey(sk));
  const node = await startNode({
    roles: ['relay', 'consumer'],
    settings: { 'api.auth': 'required', 'api.nostr_keys': npub },
  });
  try {
    const url = node.apiUrl + '/api/v1/jobs';
    const payload = JSON.parse(JOB);
    const token = await getToken(url, 'POST', (e) => finalizeEvent(e, sk), true, payload);
    const ok = await call(node, 'POST', '/api/v1/jobs', { authorization: token, body: JSON.stringify(payload) });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));

    const replay = await call(node, 'POST', '/api/v1/jobs', { authorization: token, body: JSON.stringify(payload) });
    assert.equal(replay.status, 401);
    assert.equal(replay.body.error.message, 'NIP-98: token already used');

    const getTokenForList = await getToken(url, 'GET', (e) => finalizeEvent(e, sk), true);
    const list = await call(node, 'GET', '/api/v1/jobs', { authorization: getTokenForList });
    assert.equal(list.status, 200);
    assert.equal(list.body.jobs.length, 1, 'the replay stored nothing');

    // A token for one URL does not open another.
    const other = await getToken(node.apiUrl + '/api/v1/providers', 'GET', (e) => finalizeEvent(e, sk), true);
    const moved = await call(node, 'GET', '/api/v1/jobs', { authorization: other });
    assert.equal(moved.status, 401);
    assert.match(moved.body.error.message, /^NIP-98: URL does not match/);

    // A key that is not allowed.
    const stranger = await getToken(url, 'GET', (e) => finalizeEvent(e, generateSecretKey()), true);
    assert.equal((await call(node, 'GET', '/api/v1/jobs', { authorization: stranger })).status, 401);
  } finally {
    await node.stop('SIGKILL');
  }
});

function wsOutcome(url, headers = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    const messages = [];
    ws.on('message', (m) => {
      messages.push(JSON.parse(m.toString()));
      ws.close();
    });
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), messages }));
    ws.on('error', () => {});
  });
}

test('job streams take the key as access_token; without one the socket closes with 4401', async () => {
  const node = await startNode({ roles: ['relay', 'consumer'], settings: { 'api.auth': 'required' } });
  try {
    const submitter = await createKey(node, 'submit');
    const job = (await call(node, 'POST', '/api/v1/jobs', { key: submitter.key, body: JOB })).body;
    const base = node.apiUrl.replace('http://', 'ws://') + `/api/v1/jobs/${job.id}/stream`;

    const refused = await wsOutcome(base);
    assert.equal(refused.code, 4401);
    assert.equal(refused.reason, 'missing credentials');
    assert.equal(refused.messages.length, 0);

    const opened = await wsOutcome(`${base}?after=0&access_token=${submitter.key}`);
    assert.ok(opened.messages.length >= 1, `closed ${opened.code} ${opened.reason}`);
    assert.equal(opened.messages[0].job_id, job.id);
  } finally {
    await node.stop('SIGKILL');
  }
});

function rawRequest(node, method, path, headers) {
  const { hostname, port } = new URL(node.apiUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, method, path, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('rate limit: 429 with Retry-After; CORS preflight for an allowed origin only', async () => {
  const node = await startNode({
    roles: ['relay', 'consumer'],
    settings: { 'api.rate_limit': 60, 'api.rate_burst': 3, 'api.cors_origins': 'https://app.example' },
  });
  try {
    const statuses = [];
    let limited;
    for (let i = 0; i < 5; i++) {
      const r = await call(node, 'GET', '/api/v1/jobs');
      statuses.push(r.status);
      if (r.status === 429) limited = r;
    }
    assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
    assert.ok(limited, `statuses ${statuses}`);
    assert.equal(limited.body.error.code, 'rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);

    const preflight = { origin: 'https://app.example', 'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type' };
    const allowed = await rawRequest(node, 'OPTIONS', '/api/v1/jobs', preflight);
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://app.example');
    assert.match(allowed.headers['access-control-allow-headers'], /Authorization/);
    const other = await rawRequest(node, 'OPTIONS', '/api/v1/jobs', { ...preflight, origin: 'https://evil.example' });
    assert.equal(other.status, 403);
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  } finally {
    await node.stop('SIGKILL');
  }
});
