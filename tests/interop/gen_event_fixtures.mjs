// Regenerates tests/data/nostr-tools-events.json: events signed by nostr-tools with a fixed key, covering the
// content and tags that canonical serialization gets wrong most easily. The C++ unit tests check that our parser
// and serializer reproduce each id byte for byte, with no node needed at test time.
//   node tests/interop/gen_event_fixtures.mjs > tests/data/nostr-tools-events.json
import { finalizeEvent } from 'nostr-tools/pure';
import { hexToBytes } from '@noble/hashes/utils.js';
import { trickyCases } from './tricky_cases.mjs';

const sk = hexToBytes('5c6c25357a1b2f5a5c2f3a5e0d2f1c7b0a3e4f5d6c7b8a9f0e1d2c3b4a596877');
const events = trickyCases().map(({ name, kind, tags, content }) => ({
  name,
  event: finalizeEvent({ kind, created_at: 1700000000, tags, content }, sk),
}));
process.stdout.write(JSON.stringify({ generator: 'nostr-tools 2.25.2 finalizeEvent', events }, null, 1) + '\n');
