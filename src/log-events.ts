/**
 * Every log event west writes, with its level and what it means: the one catalogue the
 * logger's types and doc/operations.md (checked by test/unit/log-events.test.ts) follow.
 */

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

interface LogEventKind {
  /** The level it is logged at; some events take one of several, by severity. */
  level: LogLevel | readonly LogLevel[];
  what: string;
}

export const LOG_EVENTS = {
  'node.started': { level: 'info', what: 'the node is up: ports bound, early tunnels dialling' },
  'node.start_failed': { level: 'error', what: 'the node could not start (a config that does not load, a port in use): the process exits 1 (JSON log mode; a plain line otherwise)' },
  'node.input_ignored': { level: 'debug', what: "`--input` was given: accepted for the original's usage line, and ignored" },
  'node.log_reopened': { level: 'info', what: 'SIGUSR1: the `-O` log file was opened again (after logrotate moved it)' },
  'node.log_reopen_failed': { level: 'error', what: 'SIGUSR1: the `-O` log file could not be opened again; lines go on to the old one' },
  'node.stopping': { level: 'info', what: 'SIGTERM/SIGINT: stops accepting and drains (carries the signal and the drain time)' },
  'node.stopped': { level: 'info', what: 'everything closed' },
  'node.workers': { level: 'info', what: 'west.workers above 1: the primary process starts that many workers (carries the count and its pid)' },
  'node.worker_started': { level: 'info', what: 'a worker is up (its index and pid); logged by the primary' },
  'node.worker_exited': { level: 'warn', what: 'a worker died (its code or signal): the primary starts it again after a back-off' },
  'node.worker_failed': { level: 'error', what: 'a worker exited before it was up (it said why): the primary stops the others and exits 1' },
  'node.workers_reduced': { level: 'warn', what: 'a tunnel server cannot pool connections: only worker 0 runs on, the others stop' },
  'node.workers_capped': { level: 'warn', what: 'fewer workers run than west.workers asks (the reason says why)' },
  'node.forced_exit': { level: 'warn', what: 'a second SIGTERM/SIGINT while draining: exits at once' },
  'node.stop_failed': { level: 'error', what: 'closing something failed while stopping; the process exits 1' },
  'node.drain_timeout': { level: 'warn', what: 'requests were still in flight when the drain time ran out' },
  'node.reload_requested': { level: 'info', what: 'SIGHUP: the config file is read again' },
  'node.reloaded': { level: 'info', what: 'a reload was applied, with what changed' },
  'node.reload_rejected': { level: 'error', what: 'a reload was refused (invalid config, or a port that cannot be bound); the running config stays' },
  'node.reload_queued': { level: 'info', what: 'a SIGHUP arrived while a reload ran: it runs next (at most one waits; more fold into it)' },
  'node.reload_failed': { level: 'error', what: 'a reload failed unexpectedly (a bug); the running config stays and the node goes on' },
  'node.reload_failed_stack': { level: 'debug', what: 'the stack of a `node.reload_failed`' },
  'node.reload_rollback_failed': { level: 'error', what: 'a refused reload could not put back a port it had given up; that part of the node is down' },
  'tunnel.server_listening': { level: 'info', what: 'the tunnel server is bound' },
  'tunnel.connected': { level: 'info', what: 'a tunnel this node dials is up (with the wire version negotiated, `wire`)' },
  'tunnel.disconnected': { level: ['warn', 'error'], what: 'a tunnel this node dials went down (error when another connection took its name)' },
  'tunnel.redial': {
    level: ['info', 'warn', 'error'],
    what: 'the next dial of a lost or failed tunnel, with the delay and the reason: warn the first time, error when the server refused us or its certificate did not verify',
  },
  'tunnel.pool_unsupported': { level: 'warn', what: 'a tunnel with `connections` > 1 reached a server that cannot pool (an older release, or west.v2): it keeps one connection (a worker above 0, `worker`, keeps none)' },
  'tunnel.client_connected': { level: 'info', what: "a peer connected to this node's tunnel server (with the wire version negotiated, `wire`)" },
  'tunnel.client_disconnected': { level: 'info', what: 'a peer left (with close code and reason)' },
  'tunnel.name_reclaimed': { level: 'warn', what: 'a peer connected with a name that was already connected and took it over' },
  'tunnel.heartbeat_timeout': { level: 'warn', what: 'a peer stopped answering pings and was dropped' },
  'tunnel.client_refused': { level: 'warn', what: 'a connection refused at the handshake, with the precise reason (the client only sees 400, 401 or 409)' },
  'mqtt.server_subscribed': { level: 'info', what: "a tunnel server over MQTT (`wsts.mqtt`) is connected to its broker and reads its clients' topics" },
  'mqtt.broker_error': { level: 'error', what: 'a tunnel server\'s MQTT broker refused it (credentials, a subscription its ACL forbids) or could not be reached: logged once per reason, retried every second' },
  'mqtt.broker_lost': { level: 'warn', what: "a tunnel server's connection to its MQTT broker closed: every session over it ended (it reconnects by itself)" },
  'mqtt.unexpected_session': { level: 'debug', what: 'an MQTT message for a session this tunnel server does not have (forged, or late from one that ended) was dropped' },
  'mqtt.hello_flood': { level: 'warn', what: 'more HELLOs from one client name than a tunnel server over MQTT judges in 10 s: the rest are dropped unanswered' },
  'tunnel.protocol_error': { level: 'warn', what: 'a peer broke the protocol; the tunnel is closed (1002)' },
  'tunnel.error': { level: 'warn', what: "a tunnel's socket failed" },
  'tunnel.tls_refused': { level: 'warn', what: 'a TLS handshake on a `wss://` tunnel server failed (e.g. no or a wrong client certificate)' },
  'tunnel.stream_error': { level: 'error', what: 'handling one stream threw; that stream is reset, the tunnel goes on' },
  'tunnel.upgrade_socket_error': { level: 'debug', what: 'a socket failed while its tunnel handshake was judged' },
  'mesh.route': { level: 'info', what: 'the best route to a node changed (dest, via, path, hops, cost) or was lost (`lost`)' },
  'mesh.routes_refused': { level: 'warn', what: "a peer's route advertisement could not be read; the routes learned from it stay as they were" },
  'mesh.relay': { level: 'debug', what: 'a stream relayed toward its destination (id, from, to, peer, next hop, hops)' },
  'mesh.relay_failed': { level: 'debug', what: 'a stream this node was asked to relay could not be (no route, hop limit, loop, full tunnel)' },
  'mesh.transit_denied': { level: 'warn', what: 'a stream refused by `west.transit` or `west.relays` (the client got 403)' },
  'security.open_relay': { level: 'warn', what: "at start: this node performs its peers' requests and has no `west.egress` allowlist" },
  'security.secret_file_readable': { level: 'warn', what: 'at start: a token or TLS key file that group or others can read' },
  'security.control_port_open': { level: 'warn', what: 'at start: a control port on every interface or on a public address without `west.cpToken`' },
  'security.mapping_without_ca': {
    level: 'warn',
    what: 'at start: mappings without `ca` on a listener other machines reach ([security.md](security.md#warnings-settings-that-work-but-leave-a-door-open))',
  },
  'proxy.listening': { level: 'info', what: 'a proxy listener is bound' },
  'proxy.forward': { level: 'debug', what: 'a request routed onto a stream (id, outgoing URL, peer, stream)' },
  'proxy.bad_request': { level: 'debug', what: 'a request refused before it was routed (no head Node could parse, CONNECT)' },
  'proxy.handoff': { level: 'debug', what: "the lean front of a plain-http listener gave a connection to Node's server at a head it does not serve itself (the reason: chunked, Upgrade, Expect, an odd byte, ...)" },
  'proxy.connection_limit': { level: 'debug', what: 'a connection beyond `west.maxConnectionsPerAddress` was closed at once' },
  'proxy.internal_error': { level: 'error', what: 'a bug: handling a request threw; the client got 500' },
  'outgoing.egress_denied': { level: 'warn', what: 'a peer asked this node for a URL `west.egress` does not allow it (the client got 403)' },
  'outgoing.failed': { level: 'debug', what: 'a request failed at this far end (code, node, reason)' },
  'wazigate.listening': { level: 'info', what: 'a wazigate cloud listener is bound ([wazigate.md](wazigate.md))' },
  'wazigate.connected': { level: 'info', what: 'a wazigate side is connected to its MQTT broker and subscribed' },
  'wazigate.disconnected': { level: 'warn', what: 'a wazigate side lost its MQTT broker (it connects again with back-off)' },
  'wazigate.redial': {
    level: ['info', 'warn', 'error'],
    what: 'the next connection to the MQTT broker, with the delay and the reason: warn the first time, error when the broker refused the user name or password',
  },
  'wazigate.subscribe_refused': { level: 'error', what: "the broker refused a wazigate side's subscription (its ACL); the connection is dropped and tried again" },
  'wazigate.bad_message': { level: 'warn', what: 'a wazigate message that does not read as the format says (topic or payload); an answer to a waiting request makes it 502' },
  'wazigate.stray_answer': {
    level: ['debug', 'warn'],
    what: 'a wazigate answer for a request that is not waiting (never sent, answered already) or from another gateway than the one asked: dropped; debug when it is a late answer to a request whose client left or that timed out',
  },
  'control.listening': { level: 'info', what: 'the control port is bound' },
  'control.metrics_failed': { level: 'error', what: 'building `/metrics` failed (the scrape got 500)' },
  'auth.decision': { level: 'info', what: 'one decision about a tunnel, a stream or a session key: the question, allow, reason, and whether it came from the hook or its cache (doc/remote-access.md#the-auth-hook)' },
  'auth.hook_failed': { level: 'warn', what: 'the auth hook did not answer in time, could not be reached or answered without `allow`: the event is refused unless `failOpen`' },
  'session.issued': { level: 'info', what: 'the control port issued a remote-access or rendezvous key (its first characters only)' },
  'session.refused': { level: 'warn', what: 'a remote-access or rendezvous key was refused (unknown, used, expired, wrong endpoint, the hook, a cap)' },
  'session.opened': { level: 'info', what: 'a remote-access session or a rendezvous pair started' },
  'session.closed': { level: 'info', what: 'a remote-access session or a rendezvous pair ended, with bytes each way and why' },
  'session.unpaired': { level: 'info', what: 'a rendezvous party no second party joined within `west.access.pairWait` was closed (4410)' },
  'tcp.listening': { level: 'info', what: 'a `tcp://` listener is bound ([tcp.md](tcp.md))' },
  'tcp.access': { level: ['info', 'warn'], what: 'one line per connection of a `tcp://` listener when it ends: outcome (`closed`, `reset`, `refused`), bytes each way, duration; warn when refused (fields in [tcp.md](tcp.md#access-log))' },
  'tcp.refused': { level: 'debug', what: 'a `tcp://` listener closed a connection at once: client not in `ca`, over `west.maxConnectionsPerAddress`, or draining' },
  'pipe.connected': { level: 'info', what: '`west pipe`: the far end connected; stdin and stdout now carry the stream' },
  access: { level: 'info', what: 'one line per request at the listener it arrived at, when its answer ends (fields in observability.md)' },
  perform: { level: 'info', what: 'one line per request a far end performed, with the same id (fields in observability.md)' },
} as const satisfies Record<string, LogEventKind>;

export type LogEvent = keyof typeof LOG_EVENTS;

type LevelsOf<E extends LogEvent> = (typeof LOG_EVENTS)[E]['level'] extends infer X ? (X extends readonly (infer U)[] ? U : X) : never;

/** The events that may be logged at one level: the logger's methods take only these. */
export type LogEventAt<L extends LogLevel> = { [E in LogEvent]: L extends LevelsOf<E> ? E : never }[LogEvent];

/** An event's levels as a list. */
export function levelsOf(event: LogEvent): readonly LogLevel[] {
  const level: LogLevel | readonly LogLevel[] = LOG_EVENTS[event].level;
  return typeof level === 'string' ? [level] : level;
}
