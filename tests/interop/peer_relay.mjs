// A third-party relay for interop tests and benchmarks: @nostr-relay/core with its SQLite repository
// (@nostr-relay/event-repository-sqlite), served over `ws` on 127.0.0.1.
//   node peer_relay.mjs DB_PATH [PORT]     prints "peer relay listening on ws://127.0.0.1:PORT"
import { WebSocketServer } from 'ws';
import { NostrRelay } from '@nostr-relay/core';
import { EventRepositorySqlite } from '@nostr-relay/event-repository-sqlite';

const [dbPath, portArg] = process.argv.slice(2);
if (!dbPath) {
  console.error('usage: peer_relay.mjs DB_PATH [PORT]');
  process.exit(2);
}
const repository = new EventRepositorySqlite(dbPath);
await repository.init();
const relay = new NostrRelay(repository);
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(portArg ?? 0) });
wss.on('connection', (ws, req) => {
  relay.handleConnection(ws, req.socket.remoteAddress);
  ws.on('message', async (data) => {
    let message;
    try {
      message = JSON.parse(data.toString());
    } catch {
      ws.send(JSON.stringify(['NOTICE', 'invalid: could not parse message']));
      return;
    }
    try {
      await relay.handleMessage(ws, message);
    } catch (e) {
      ws.send(JSON.stringify(['NOTICE', 'error: ' + e.message]));
    }
  });
  ws.on('close', () => relay.handleDisconnect(ws));
  ws.on('error', () => {});
});
wss.on('listening', () => console.log(`peer relay listening on ws://127.0.0.1:${wss.address().port}`));
const stop = async () => {
  wss.close();
  await relay.destroy();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
