// The infernet binary as a user meets it: help on every command, exit codes, refusals with reasons, and the
// key file's life cycle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './infernet_cli.mjs';

const commands = [
  [], ['key'], ['key', 'new'], ['key', 'show'], ['key', 'import'], ['event'], ['event', 'sign'], ['event', 'verify'],
  ['nip44'], ['nip44', 'encrypt'], ['nip44', 'decrypt'], ['nip19'], ['nip19', 'encode'], ['nip19', 'decode'],
  ['nip98'], ['nip98', 'token'], ['nip98', 'verify'], ['config'], ['config', 'show'], ['config', 'keys'],
];

test('every command answers --help with its usage', () => {
  for (const c of commands) {
    const r = run([...c, '--help']);
    assert.equal(r.code, 0, c.join(' '));
    assert.match(r.stdout, /Usage: infernet/, c.join(' '));
  }
});

test('usage errors exit 2 and say what is missing', () => {
  let r = run([]);
  assert.equal(r.code, 2);
  r = run(['nip44', 'encrypt']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--to is required/);
  r = run(['key', 'show', '--field', 'bogus']);
  assert.equal(r.code, 2);
});

test('key life cycle: new, refuse to overwrite, import, show, permissions', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'infernet-cli-'));
  try {
    const opts = { dataDir };
    let r = run(['key', 'new'], opts);
    assert.equal(r.code, 0, r.stderr);
    const npub = r.stdout.match(/npub1[0-9a-z]+/)[0];
    assert.equal(statSync(join(dataDir, 'identity.key')).mode & 0o777, 0o600);
    r = run(['key', 'new'], opts);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already exists.*--force/);
    assert.equal(run(['key', 'show', '--field', 'npub'], opts).stdout.trim(), npub);

    r = run(['key', 'import'], { ...opts, input: 'nsec1notakey\n' });
    assert.equal(r.code, 1);
    r = run(['key', 'import', '--force'], { ...opts, input: 'nsec1notakey\n' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /secret key/);
    r = run(['key', 'import', '--force'], { ...opts, input: 'A'.repeat(64) });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /lowercase hex/);
    assert.equal(run(['key', 'show', '--field', 'npub'], opts).stdout.trim(), npub, 'a refused import changes nothing');

    const secret = '0000000000000000000000000000000000000000000000000000000000000003';
    r = run(['key', 'import', '--force'], { ...opts, input: secret + '\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(run(['key', 'show', '--field', 'hex'], opts).stdout.trim(),
      'f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('configuration: file, environment and flags, with sources; unknown keys are refused', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'infernet-cli-'));
  try {
    writeFileSync(join(dataDir, 'infernet.toml'), '[log]\nlevel = "debug"\n');
    let r = run(['config', 'show'], { dataDir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /log\.level\s+= debug\s+# file/);
    r = run(['config', 'show', '--set', 'nip98.max_age_seconds=5'], { dataDir });
    assert.match(r.stdout, /nip98\.max_age_seconds\s+= 5\s+# flag/);
    r = run(['config', 'show', '--set', 'nip98.max_age=5'], { dataDir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown config key 'nip98.max_age'/);
    writeFileSync(join(dataDir, 'infernet.toml'), '[log\n');
    r = run(['config', 'show'], { dataDir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /infernet\.toml:1/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('event sign refuses bad input with the reason and signs nothing', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'infernet-cli-'));
  try {
    run(['key', 'new'], { dataDir });
    const cases = [
      [['event', 'sign', '--kind', '70000'], /--kind must be from 0 to 65535/],
      [['event', 'sign', '--kind', '1', '--tag', 'novalue'], /--tag expects/],
      [['event', 'sign', '--kind', '1', '--tag', '["e",1]'], /--tag: elements must be strings/],
      [['event', 'sign'], /give --kind, or an event template/],
    ];
    for (const [args, why] of cases) {
      const r = run(args, { dataDir, input: '' });
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stdout, '');
      assert.match(r.stderr, why);
    }
    const r = run(['event', 'sign'], { dataDir, input: '{"kind":"1","content":"x"}' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /event template: kind: must be an integer/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
