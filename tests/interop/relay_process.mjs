// Starts `infernet node --relay` on 127.0.0.1 with a port the OS picks, for tests; resolves once it prints
// its URL.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from './infernet_cli.mjs';

export function tempDir(prefix = 'infernet-relay-') {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startRelay({ dataDir = tempDir(), settings = {}, listen = '127.0.0.1:0' } = {}) {
  const args = ['node', '--relay', '--listen', listen, '--database', join(dataDir, 'relay.db'), '--log-level', 'warn'];
  for (const [k, v] of Object.entries(settings)) args.push('--set', `${k}=${v}`);
  const proc = spawn(BIN, args, { env: { ...process.env, INFERNET_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('relay did not start: ' + stderr)), 15000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/relay listening on (ws:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited ${code}: ${stderr}`));
    });
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    url,
    dataDir,
    proc,
    httpUrl: url.replace('ws://', 'http://'),
    stderr: () => stderr,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}
