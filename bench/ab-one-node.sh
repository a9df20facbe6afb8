#!/bin/bash
# Usage: bench/ab-one-node.sh <checkout with dist/ built> <free port base>; needs wrk (Debian).
# A/B: one self-tunnelled node in front of a tiny Node origin, wrk 2 threads 50 connections 10 s.
set -e
ROOT=$1; PORTBASE=$2
cat > /tmp/ab-origin.mjs <<'O'
import http from 'node:http';
http.createServer((q, s) => { q.resume(); q.on('end', () => { s.writeHead(200, {'Content-Length': 100}); s.end(Buffer.alloc(100, 97)); }); }).listen(Number(process.argv[2]), '127.0.0.1');
O
node /tmp/ab-origin.mjs $((PORTBASE)) &
OP=$!
cat > /tmp/ab-$PORTBASE.json <<J
{ "west": { "nm": "ab" }, "wsts": { "sp": "ws://127.0.0.1:$((PORTBASE+1))" },
  "proxy": { "http://127.0.0.1:$((PORTBASE+2))": { "ea": "ws://127.0.0.1:$((PORTBASE+1))", "/o": { "ou": "http://127.0.0.1:$((PORTBASE))/" } } } }
J
node $ROOT/dist/src/cli.js -c /tmp/ab-$PORTBASE.json --log-level error &
WP=$!
for i in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:$((PORTBASE+2))/o/x && break; sleep 0.1; done
wrk -t2 -c50 -d10s http://127.0.0.1:$((PORTBASE+2))/o/x | grep -E "Requests/sec|Latency"
kill $WP $OP
