// index.d.ts is written by hand (tsc is not a dependency): this test holds it to the code, so a method added,
// renamed or removed on one side and not the other fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as sdk from '../src/index.js';
import { Emitter } from '../src/emitter.js';

const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8');

// The members declared in `export declare class <name> { ... }`.
function declaredMembers(name) {
  const start = dts.indexOf(`export declare class ${name} `);
  assert.ok(start >= 0, `index.d.ts declares class ${name}`);
  const body = dts.slice(dts.indexOf('{', start) + 1, dts.indexOf('\n}', start));
  const methods = new Set();
  const fields = new Set();
  for (const line of body.split('\n')) {
    const m = line.match(/^\s+(?:readonly\s+)?([A-Za-z_$][\w$]*)\s*(<[^>]*>)?\s*(\(|\?|:)/);
    if (!m || m[1] === 'constructor') continue;
    (m[3] === '(' ? methods : fields).add(m[1]);
  }
  return { methods, fields };
}

function runtimeMethods(cls) {
  const out = new Set();
  for (let proto = cls.prototype; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      const d = Object.getOwnPropertyDescriptor(proto, key);
      if (key !== 'constructor' && typeof d.value === 'function') out.add(key);
    }
  }
  return out;
}

test('every export of the package is declared, and every declaration is exported', () => {
  const declared = new Set([...dts.matchAll(/^export declare (?:class|function|const) ([A-Za-z_$][\w$]*)/gm)].map((m) => m[1]));
  assert.deepEqual([...declared].sort(), Object.keys(sdk).sort());
});

test('the classes have exactly the declared methods', () => {
  for (const name of ['InfernetClient', 'JobStream']) {
    const { methods } = declaredMembers(name);
    assert.deepEqual([...methods].sort(), [...runtimeMethods(sdk[name])].sort(), `methods of ${name}`);
  }
});

test('the declared fields exist on instances', () => {
  const client = new sdk.InfernetClient({ fetch: async () => new Response('{}') });
  for (const field of declaredMembers('InfernetClient').fields) assert.ok(field in client, `InfernetClient.${field}`);
  const err = new sdk.InfernetError('x', { status: 400, code: 'c', field: 'f' });
  for (const field of declaredMembers('InfernetError').fields) assert.ok(field in err, `InfernetError.${field}`);
  assert.ok(Emitter.prototype.on, 'JobStream is an emitter');
});

// The text of `export interface <name> ... {` up to its closing brace at the start of a line.
function interfaceBody(name) {
  const start = dts.indexOf(`export interface ${name} `);
  assert.ok(start >= 0, `index.d.ts declares interface ${name}`);
  return dts.slice(start, dts.indexOf('\n}', start));
}

test('the job spec type names the guide fields and the API shapes', () => {
  for (const key of ['model', 'input', 'parameters', 'resources', 'budget', 'deadline']) {
    assert.match(interfaceBody('InferenceJobSpec'), new RegExp(`\\n  ${key}\\??:`), key);
  }
  for (const key of ['gpu_type', 'min_gpu_memory_mb', 'priority']) {
    assert.match(interfaceBody('JobResources'), new RegExp(`\\n  ${key}\\?:`), key);
  }
  for (const ev of ['progress', 'result', 'complete', 'error', 'state', 'note', 'reconnect', 'close']) {
    assert.match(interfaceBody('JobStreamEvents'), new RegExp(`\\n  ${ev}:`), ev);
  }
});
