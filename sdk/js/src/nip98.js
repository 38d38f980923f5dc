// NIP-98 HTTP authorization: a signed kind-27235 event naming the URL, the method and the body's hash, sent
// as `Authorization: Nostr <base64 of the event's JSON>`. Signing uses nostr-tools (an optional peer
// dependency), loaded only when a secret key is given.
import { InfernetError } from './errors.js';

const HTTP_AUTH_KIND = 27235;

let nostrTools;
async function loadNostrTools() {
  if (!nostrTools) {
    try {
      const [pure, nip19] = await Promise.all([import('nostr-tools/pure'), import('nostr-tools/nip19')]);
      nostrTools = { pure, nip19 };
    } catch (cause) {
      throw new InfernetError('nostrSecretKey: NIP-98 signing needs the nostr-tools package (npm install nostr-tools)', {
        code: 'missing_dependency',
        field: 'nostrSecretKey',
        cause,
      });
    }
  }
  return nostrTools;
}

function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function base64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function bodyBytes(body) {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') return new TextEncoder().encode(body);
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new TypeError('body: must be a string, Uint8Array or ArrayBuffer to be signed');
}

// A secret key as 32 bytes, from 64 hex digits, an nsec, or the bytes themselves.
export async function secretKeyBytes(key) {
  if (key instanceof Uint8Array) {
    if (key.length !== 32) throw new InfernetError('nostrSecretKey: must be 32 bytes', { code: 'invalid_input', field: 'nostrSecretKey' });
    return key;
  }
  if (typeof key === 'string' && /^[0-9a-fA-F]{64}$/.test(key)) return hexToBytes(key);
  if (typeof key === 'string' && key.startsWith('nsec1')) {
    const { nip19 } = await loadNostrTools();
    try {
      const decoded = nip19.decode(key);
      if (decoded.type === 'nsec') return decoded.data;
    } catch {
      // reported below
    }
  }
  throw new InfernetError('nostrSecretKey: must be 64 hex digits, an nsec or 32 bytes', { code: 'invalid_input', field: 'nostrSecretKey' });
}

// A public key as lower-case hex, from hex or an npub.
export async function publicKeyHex(key) {
  if (typeof key === 'string' && /^[0-9a-fA-F]{64}$/.test(key)) return key.toLowerCase();
  if (typeof key === 'string' && key.startsWith('npub1')) {
    const { nip19 } = await loadNostrTools();
    try {
      const decoded = nip19.decode(key);
      if (decoded.type === 'npub') return decoded.data;
    } catch {
      // reported below
    }
  }
  throw new InfernetError('nostrPublicKey: must be 64 hex digits or an npub', { code: 'invalid_input', field: 'nostrPublicKey' });
}

// The public key (hex) of a secret key given in any form secretKeyBytes accepts.
export async function derivePublicKey(secretKey) {
  const { pure } = await loadNostrTools();
  return pure.getPublicKey(await secretKeyBytes(secretKey));
}

// The Authorization header value for one request: "Nostr <token>". url: the full URL the server sees
// (http://<Host><path and query>); method: the HTTP method; body: the exact bytes sent (string, Uint8Array or
// ArrayBuffer), hashed into a "payload" tag when present and not empty.
export async function nip98Header({ secretKey, url, method, body, now = Date.now() }) {
  const { pure } = await loadNostrTools();
  const key = await secretKeyBytes(secretKey);
  const tags = [['u', url], ['method', method.toUpperCase()]];
  const bytes = bodyBytes(body);
  if (bytes && bytes.length > 0) {
    const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes));
    tags.push(['payload', bytesToHex(digest)]);
  }
  const event = pure.finalizeEvent({ kind: HTTP_AUTH_KIND, created_at: Math.floor(now / 1000), tags, content: '' }, key);
  return 'Nostr ' + base64(new TextEncoder().encode(JSON.stringify(event)));
}
