/** The mesh's route table (src/mesh/table.ts) and the ROUTES payload (src/mesh/advert.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRoutesPayload, encodeRoutesPayload, encodeRoutesPayloads, MAX_ROUTES_PAYLOAD } from '../../src/mesh/advert.js';
import { RouteTable } from '../../src/mesh/table.js';
import { learnAllowed, originOf, transitAllowed } from '../../src/mesh/transit.js';

const table = (self = 'A', maxHops = 8): RouteTable<string> => new RouteTable<string>(self, maxHops, [], () => 1000);

test('a link makes its peer reachable directly, and taking it down withdraws it', () => {
  const t = table();
  assert.deepEqual(t.addLink('l1', 'B'), ['B']);
  assert.deepEqual(t.lookup('B'), { dest: 'B', link: 'l1', path: ['B'], cost: 1, since: 1000 });
  assert.deepEqual(t.removeLink('l1'), ['B']);
  assert.equal(t.lookup('B'), undefined);
});

test('routes learned over a link are withdrawn with it, at once', () => {
  const t = table();
  t.addLink('l1', 'B');
  assert.deepEqual(t.learn('l1', [{ dest: 'C', path: ['B', 'C'], cost: 1 }, { dest: 'D', path: ['B', 'C', 'D'], cost: 2 }]), ['C', 'D']);
  assert.deepEqual(t.lookup('D')?.path, ['B', 'C', 'D']);
  assert.equal(t.lookup('D')?.cost, 3);
  assert.deepEqual(t.removeLink('l1').sort(), ['B', 'C', 'D']);
  assert.deepEqual(t.routes(), []);
});

test('a path that names this node, repeats a name, ends elsewhere or is too long is never learned', () => {
  const t = table('A', 3);
  t.addLink('l1', 'B');
  assert.deepEqual(t.learn('l1', [
    { dest: 'C', path: ['B', 'A', 'C'], cost: 2 },
    { dest: 'D', path: ['B', 'X', 'B', 'D'], cost: 3 },
    { dest: 'E', path: ['B', 'F'], cost: 1 },
    { dest: 'G', path: ['B', 'H', 'I', 'G'], cost: 3 },
    { dest: 'A', path: ['B', 'A'], cost: 1 },
    { dest: 'J', path: ['B', 'J'], cost: -1 },
  ]), []);
  assert.deepEqual(t.routes().map((r) => r.dest), ['B']);
});

test('a path that does not start with the peer is not learned: a peer cannot pass its routes off as another node\'s', () => {
  const t = table();
  t.addLink('l1', 'B');
  assert.deepEqual(t.learn('l1', [{ dest: 'C', path: ['X', 'C'], cost: 1 }]), []);
  assert.equal(t.lookup('C'), undefined);
});

test('a node is named on each link as the peer knows it (the name it presented there)', () => {
  const t = table();
  t.addLink('l1', 'B');
  t.addLink('l2', 'C');
  assert.deepEqual(t.advertFor('l1', 'A', 'A-at-B'), { dest: 'A-at-B', path: ['A-at-B'], cost: 0 });
  assert.deepEqual(t.advertFor('l1', 'C', 'A-at-B'), { dest: 'C', path: ['A-at-B', 'C'], cost: 1 });
});

test('a bad announcement replaces a good one as a withdrawal', () => {
  const t = table();
  t.addLink('l1', 'B');
  t.learn('l1', [{ dest: 'C', path: ['B', 'C'], cost: 1 }]);
  assert.deepEqual(t.learn('l1', [{ dest: 'C', path: ['B', 'A', 'C'], cost: 1 }]), ['C']);
  assert.equal(t.lookup('C'), undefined);
});

test('the best route: lowest cost, then fewest hops, then the names in order', () => {
  const t = table();
  t.addLink('viaB', 'B');
  t.addLink('viaC', 'C');
  t.learn('viaB', [{ dest: 'D', path: ['B', 'D'], cost: 1 }]);
  t.learn('viaC', [{ dest: 'D', path: ['C', 'D'], cost: 1 }]);
  assert.equal(t.lookup('D')?.link, 'viaB', 'equal cost and hops: B before C');
  t.learn('viaB', [{ dest: 'D', path: ['B', 'X', 'D'], cost: 1 }]);
  assert.equal(t.lookup('D')?.link, 'viaC', 'equal cost: fewer hops');
  t.learn('viaC', [{ dest: 'D', path: ['C', 'D'], cost: 5 }]);
  assert.equal(t.lookup('D')?.link, 'viaB', 'lower cost wins over fewer hops');
  // The same routes learned in the other order give the same answer.
  const u = table();
  u.addLink('viaC', 'C');
  u.addLink('viaB', 'B');
  u.learn('viaC', [{ dest: 'D', path: ['C', 'D'], cost: 5 }]);
  u.learn('viaB', [{ dest: 'D', path: ['B', 'X', 'D'], cost: 1 }]);
  assert.deepEqual(u.lookup('D'), t.lookup('D'));
});

test('a link cost counts: a costly direct tunnel loses to a cheaper way round', () => {
  const t = table();
  t.addLink('direct', 'D', 10);
  t.addLink('viaB', 'B');
  t.learn('viaB', [{ dest: 'D', path: ['B', 'D'], cost: 1 }]);
  assert.equal(t.lookup('D')?.link, 'viaB');
  t.removeLink('viaB');
  assert.equal(t.lookup('D')?.link, 'direct');
});

test('withdrawing a route falls back to the next best; the peer itself stays while its link is up', () => {
  const t = table();
  t.addLink('viaB', 'B');
  t.addLink('viaC', 'C');
  t.learn('viaB', [{ dest: 'D', path: ['B', 'D'], cost: 1 }]);
  t.learn('viaC', [{ dest: 'D', path: ['C', 'E', 'D'], cost: 2 }]);
  assert.deepEqual(t.learn('viaB', [], ['D', 'B']), ['D']);
  assert.deepEqual(t.lookup('D')?.path, ['C', 'E', 'D']);
  assert.equal(t.lookup('B')?.link, 'viaB');
});

test('what a peer is told: this node first; nothing back over the link the route came from; nothing past the hop limit', () => {
  const t = table('A', 3);
  t.addLink('viaB', 'B');
  t.addLink('viaC', 'C');
  t.learn('viaB', [{ dest: 'D', path: ['B', 'D'], cost: 1 }, { dest: 'E', path: ['B', 'X', 'E'], cost: 2 }]);
  assert.deepEqual(t.advertFor('viaC', 'A'), { dest: 'A', path: ['A'], cost: 0 });
  assert.deepEqual(t.advertFor('viaC', 'D'), { dest: 'D', path: ['A', 'B', 'D'], cost: 2 });
  assert.equal(t.advertFor('viaB', 'D'), undefined);
  assert.equal(t.advertFor('viaC', 'E'), undefined, 'A, B, X, E is four names: past a limit of 3');
  assert.equal(t.advertFor('viaC', 'nowhere'), undefined);
});

test('aliases (the names this node presents to servers) count as this node', () => {
  const t = new RouteTable<string>('A', 8, ['A-at-G']);
  t.addLink('l1', 'G');
  assert.deepEqual(t.learn('l1', [{ dest: 'A-at-G', path: ['G', 'A-at-G'], cost: 1 }, { dest: 'Z', path: ['G', 'A-at-G', 'Z'], cost: 2 }]), []);
  assert.ok(t.isSelf('A-at-G'));
});

test('a ROUTES payload round-trips; anything malformed is refused whole', () => {
  const m = { announced: [{ dest: 'C', path: ['B', 'C'], cost: 1 }, { dest: 'B', path: ['B'], cost: 0 }], withdrawn: ['X'] };
  assert.deepEqual(decodeRoutesPayload(encodeRoutesPayload(m)), m);
  assert.deepEqual(decodeRoutesPayload(Buffer.from('{}')), { announced: [], withdrawn: [] });
  for (const bad of ['', '[]', 'null', '{"a":{}}', '{"a":[[1]]}', '{"a":[["1","B"]]}', '{"a":[[1.5,"B"]]}', '{"a":[[1,"has space"]]}', '{"w":[""]}', '{"w":[1]}']) {
    assert.throws(() => decodeRoutesPayload(Buffer.from(bad)), Error, bad);
  }
});

test('a table too big for one frame is split into frames that each fit', () => {
  const announced = Array.from({ length: 4000 }, (_, i) => ({ dest: `node-${i}-${'x'.repeat(200)}`, path: ['B', `node-${i}-${'x'.repeat(200)}`], cost: 1 }));
  const parts = encodeRoutesPayloads({ announced, withdrawn: [] });
  assert.ok(parts.length > 1);
  for (const p of parts) assert.ok(p.length <= MAX_ROUTES_PAYLOAD);
  assert.equal(parts.flatMap((p) => decodeRoutesPayload(p).announced).length, 4000);
});

test('transit policy: the origin a relay vouches for is believed only from west.relays; transit only where west.transit says', () => {
  const none = { relays: [] };
  assert.equal(originOf(none, 'ws://B', undefined), 'B');
  assert.equal(originOf(none, 'B', 'A'), undefined, 'a client writing `from` gets nowhere');
  assert.equal(originOf({ relays: ['B'] }, 'B', 'ws://A'), 'A');
  assert.equal(originOf({ relays: ['*'] }, 'C', 'A'), 'A');
  assert.equal(transitAllowed(none, 'A', 'D'), false, 'no transit by default');
  const policy = { relays: [], transit: new Map([['A', ['D']], ['*', ['hub-svc']]]) };
  assert.equal(transitAllowed(policy, 'A', 'ws://D'), true);
  assert.equal(transitAllowed(policy, 'A', 'E'), false);
  assert.equal(transitAllowed(policy, 'B', 'hub-svc'), true);
  assert.equal(transitAllowed({ relays: [], transit: new Map([['A', ['*']]]) }, 'A', 'anything'), true);
});

test('a link\'s filter (west.learn): a refused destination is not learned, and a later refusal withdraws it', () => {
  const t = new RouteTable<string>('me', 8);
  let allowed = new Set(['C']);
  t.addLink('l1', 'B', 1, (dest) => allowed.has(dest));
  t.learn('l1', [{ dest: 'C', path: ['B', 'C'], cost: 1 }, { dest: 'D', path: ['B', 'D'], cost: 1 }]);
  assert.deepEqual(t.routes().map((r) => r.dest), ['B', 'C']);
  allowed = new Set();
  t.learn('l1', [{ dest: 'C', path: ['B', 'C'], cost: 1 }]);
  assert.deepEqual(t.routes().map((r) => r.dest), ['B'], 'the peer itself stays reachable');
});

test('learnAllowed: a dialled server is believed by default, a client of ours only about itself; an entry (or "*") is the whole list', () => {
  assert.equal(learnAllowed(undefined, 'hub', 'X', true), true);
  assert.equal(learnAllowed(undefined, 'site', 'X', false), false);
  const learn = new Map([['site', ['X']], ['*', ['Y']]]);
  assert.equal(learnAllowed(learn, 'site', 'X', false), true);
  assert.equal(learnAllowed(learn, 'site', 'Y', false), false);
  assert.equal(learnAllowed(learn, 'hub', 'Y', true), true);
  assert.equal(learnAllowed(learn, 'hub', 'X', true), false, 'a "*" entry narrows dialled servers too');
  assert.equal(learnAllowed(new Map([['site', ['*']]]), 'site', 'anything', false), true);
});
