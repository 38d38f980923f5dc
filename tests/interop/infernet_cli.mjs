// Runs the infernet binary for interop tests. The binary comes from INFERNET_BIN (set by ctest); each Identity
// lives in its own temporary data directory so tests never touch the user's key.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BIN = process.env.INFERNET_BIN;
if (!BIN) throw new Error('set INFERNET_BIN to the infernet binary');

export function run(args, { input, dataDir } = {}) {
  const env = { ...process.env };
  if (dataDir) env.INFERNET_DATA_DIR = dataDir;
  const r = spawnSync(BIN, args, { input, env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Runs the CLI without blocking the event loop (nodes started by the test must keep draining their pipes).
export function runAsync(args, { env } = {}) {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export function runOk(args, opts) {
  const r = run(args, opts);
  if (r.code !== 0) throw new Error(`infernet ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

// A fresh identity: `infernet key import` of the given secret (hex), in a private data directory.
export class Identity {
  constructor(secretHex) {
    this.dataDir = mkdtempSync(join(tmpdir(), 'infernet-interop-'));
    runOk(['key', 'import'], { input: secretHex + '\n', dataDir: this.dataDir });
    this.pubkey = runOk(['key', 'show', '--field', 'hex'], { dataDir: this.dataDir }).trim();
  }
  run(args, input) {
    return run(args, { input, dataDir: this.dataDir });
  }
  runOk(args, input) {
    return runOk(args, { input, dataDir: this.dataDir });
  }
  dispose() {
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
