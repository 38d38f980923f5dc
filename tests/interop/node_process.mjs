// Starts `infernet node` with any mix of roles, on 127.0.0.1 with ports the OS picks, for tests; resolves once
// every role has printed its ready line. Each node has its own data directory (identity, databases).
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nip19 } from 'nostr-tools';
import { BIN } from './infernet_cli.mjs';

export function tempDir(prefix = 'infernet-node-') {
  return mkdtempSync(join(tmpdir(), prefix));
}

// roles: any of 'relay', 'provider', 'consumer'. settings: config keys passed as --set.
export async function startNode({ roles, dataDir = tempDir(), settings = {}, listen = '127.0.0.1:0', apiListen = '127.0.0.1:0', logLevel = 'info' }) {
  const args = ['node', '--log-level', logLevel];
  for (const role of roles) args.push(`--${role}`);
  if (roles.includes('relay')) args.push('--listen', listen);
  if (roles.includes('consumer')) args.push('--api-listen', apiListen);
  for (const [k, v] of Object.entries(settings)) args.push('--set', `${k}=${v}`);
  const proc = spawn(BIN, args, { env: { ...process.env, INFERNET_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const node = { proc, dataDir, stderr: () => stderr, stdout: () => stdout };
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${roles} did not start:\n${stdout}\n${stderr}`)), 20000);
    const check = () => {
      const relay = stdout.match(/relay listening on (ws:\/\/\S+)/);
      const api = stdout.match(/api listening on (http:\/\/\S+)/);
      const provider = stdout.match(/provider (npub1\w+)/);
      const consumer = stdout.match(/consumer (npub1\w+)/);
      if (roles.includes('relay') && !relay) return;
      if (roles.includes('consumer') && !(api && consumer)) return;
      if (roles.includes('provider') && !provider) return;
      if (relay) node.relayUrl = relay[1];
      if (api) node.apiUrl = api[1];
      const npub = (provider || consumer)?.[1];
      if (npub) {
        node.npub = npub;
        node.pubkey = nip19.decode(npub).data;
      }
      clearTimeout(timer);
      resolve();
    };
    proc.stdout.on('data', (d) => {
      stdout += d;
      check();
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`node ${roles} exited ${code}:\n${stdout}\n${stderr}`));
    });
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  // A node that has not exited 30 s after the signal is killed and the test fails with its log: a shutdown
  // that hangs shows as such, not as the whole test file timing out.
  node.stop = async (signal = 'SIGTERM') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    let timer;
    const late = new Promise((resolve) => { timer = setTimeout(resolve, 30000, 'late'); });
    const result = await Promise.race([exited, late]);
    clearTimeout(timer);
    if (result !== 'late') return result;
    proc.kill('SIGKILL');
    await exited;
    throw new Error(`node ${roles} did not exit within 30 s of ${signal}:\n${stdout.slice(-4000)}\n${stderr.slice(-8000)}`);
  };
  return node;
}

// JSON over the consumer's REST API, with node.apiKey as the key when the test set one.
export async function api(node, method, path, body) {
  const headers = body === undefined ? {} : { 'content-type': 'application/json' };
  if (node.apiKey) headers.authorization = `Bearer ${node.apiKey}`;
  let res;
  let text;
  try {
    res = await fetch(node.apiUrl + path, {
      method,
      headers,
      signal: AbortSignal.timeout(30000),  // a request the node never answers fails the test, named
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    text = await res.text();
  } catch (e) {
    throw new Error(`${method} ${path}: ${e.message}`);
  }
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = { raw: text };
  }
  return { status: res.status, body: json };
}

// Polls `fn` until it returns a truthy value, or throws after `ms`.
export async function waitFor(fn, ms = 15000, what = 'condition') {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// The fake engine's fake-echo output (src/engine/fake/fake_engine.hpp): the prompt's words, each followed by a
// space, repeated until max_tokens words.
export function fakeEcho(prompt, maxTokens) {
  const words = prompt.split(/\s+/).filter(Boolean);
  let out = '';
  for (let i = 0; words.length && i < maxTokens; i++) out += words[i % words.length] + ' ';
  return out;
}

// Waits for a job to reach a final state through the consumer's API and returns it.
export async function finalJob(consumer, id, ms = 20000) {
  return waitFor(async () => {
    const r = await api(consumer, 'GET', `/api/v1/jobs/${id}`);
    return ['completed', 'failed', 'canceled', 'expired'].includes(r.body.state) ? r.body : null;
  }, ms, `job ${id} to finish`);
}
