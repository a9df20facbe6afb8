#!/usr/bin/env node
// A minimal WebSocket client for trying remote access and rendezvous without a browser:
// stdin goes out as binary messages, what comes back goes to stdout (like websocat). Once
// stdin ends and nothing has come back for half a second, it closes.
//   node sample/remote-access/client.mjs ws://127.0.0.1:9911/remoteaccess/<key>
import WebSocket from 'ws';

const url = process.argv[2];
if (!url) {
  console.error('usage: node sample/remote-access/client.mjs <ws:// URL>');
  process.exit(2);
}
const ws = new WebSocket(url, 'binary');
ws.on('unexpected-response', (_req, res) => {
  console.error(`refused: ${res.statusCode} ${res.headers['proxy-status'] ?? ''}`);
  process.exit(1);
});
let quiet;
let inputDone = false;
const closeWhenQuiet = () => {
  clearTimeout(quiet);
  if (inputDone) quiet = setTimeout(() => ws.close(1000), 500);
};
ws.on('open', () => {
  process.stdin.on('data', (chunk) => ws.send(chunk));
  process.stdin.on('end', () => { inputDone = true; closeWhenQuiet(); });
});
ws.on('message', (data) => {
  process.stdout.write(data);
  closeWhenQuiet();
});
ws.on('close', (code) => {
  console.error(`closed (${code})`);
  process.exit(0);
});
ws.on('error', (err) => {
  console.error(err.message);
  process.exit(1);
});
