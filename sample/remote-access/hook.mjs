#!/usr/bin/env node
// A sample auth hook for west (doc/remote-access.md#the-auth-hook): west POSTs one JSON
// question per event and reads { "allow": true|false, "reason": "..." }. No dependencies.
//   node sample/remote-access/hook.mjs [port]      (default 9000, on 127.0.0.1)
import http from 'node:http';

const port = Number(process.argv[2] ?? 9000);

/** The rules: edit these. Each gets the question and returns [allow, reason]. */
const RULES = {
  // Tunnels: only these names may connect to a tunnel server that asks.
  tunnel: (q) => [['site'].includes(q.name), `tunnel name ${q.name} from ${q.address}`],
  // Streams a node performs: TCP to the VNC port only; HTTP reads only.
  stream: (q) => (q.kind === 'tcp'
    ? [q.target.endsWith(':5900'), `tcp to ${q.target} from ${q.from}`]
    : [['GET', 'HEAD'].includes(q.method), `${q.method} ${q.path} from ${q.from}`]),
  // Keys: remote access to site only, rendezvous always.
  session: (q) => [q.kind === 'rendezvous' || q.to === 'site', `${q.kind} key ${q.keyId} from ${q.address}`],
};

http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    let q;
    try {
      q = JSON.parse(body);
    } catch {
      res.writeHead(400).end();
      return;
    }
    const rule = RULES[q.event];
    const [allow, reason] = rule ? rule(q) : [false, `unknown event ${q.event}`];
    console.log(`${new Date().toISOString()} ${allow ? 'allow' : 'deny '} ${q.event}: ${reason}`);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ allow, reason }));
  });
}).listen(port, '127.0.0.1', () => console.log(`auth hook on http://127.0.0.1:${port}/auth`));
