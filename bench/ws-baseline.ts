/**
 * A bare `ws` WebSocket server, as its own process: the floor under west's memory per
 * connected client (what Node and ws alone cost per idle connection). Accepts the west
 * subprotocol, does nothing with messages, prints `{"port": N}` when ready.
 */
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { SUBPROTOCOL } from '../src/tunnel/frame.js';

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
});
wss.on('connection', (ws) => ws.on('error', () => ws.terminate()));
wss.on('listening', () => {
  process.stdout.write(JSON.stringify({ port: (wss.address() as AddressInfo).port }) + '\n');
});
process.on('SIGTERM', () => {
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  process.exit(0);
});
