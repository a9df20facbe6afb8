/**
 * The control port's status page for browsers (`Accept: text/html`): one self-contained HTML
 * document (inline CSS, no script, no external asset) that refreshes itself every few
 * seconds and reads on a phone. It answers the operator's first questions: is each tunnel up,
 * what is each listener answering, and what failed lately, at which node.
 */
import { canonicalName } from '../config/types.js';
import { formatAddress, formatBytes, formatDuration, plural } from '../format.js';
import { html, join, Html, type HtmlValue } from './page-html.js';
import { RECENT_WINDOW_MS, type RecentActivity, type RecentError } from './page-recent.js';
import { STYLE } from './page-style.js';
import type { ListenerState, NodeState, TunnelState } from './state.js';

/** Seconds between the page's own reloads. */
export const REFRESH_S = 5;

/** Headers for the page: no script may run even if a value escaped its escaping. */
export const PAGE_HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  Vary: 'Accept',
} as const;

/** The whole page for one state snapshot. `now` is injectable for tests. */
export function renderStatusPage(state: NodeState, recent: RecentActivity, now = Date.now()): string {
  const errors = recent.recentErrors();
  const up = state.tunnels.filter((t) => t.connected).length;
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${REFRESH_S}">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>${state.name} · west</title>
<style>${Html.trusted(STYLE)}</style>
</head>
<body>
<main>
<header>
<h1 id="node-name">${state.name}</h1>
<p class="sub">west ${state.version} · pid ${state.pid}${state.workers ? html` · worker ${state.workers.answering} of ${state.workers.count} answers` : ''} · up ${formatDuration(state.uptimeS)} (since ${stamp(state.startedAt)})</p>
<ul class="summary">
${state.tunnels.length > 0 ? html`<li>tunnels up <b>${up}/${state.tunnels.length}</b></li>` : ''}
${state.server ? html`<li>peers connected <b>${state.server.peers.length}</b></li>` : ''}
<li>listeners <b>${state.listeners.length}</b></li>
<li>in flight <b>${state.listeners.reduce((n, l) => n + l.inFlight, 0)}</b></li>
<li>recent errors <b>${errors.length}</b></li>
</ul>
</header>
${tunnelsSection(state, now)}
${peersSection(state, now)}
${listenersSection(state, recent)}
${tcpListenersSection(state)}
${routesSection(state, now)}
${errorsSection(errors, now)}
<footer>
<p>Refreshes every ${REFRESH_S} s · rendered ${stamp(new Date(now).toISOString())} ·
<a href="/state.json">state.json</a> · <a href="/metrics">metrics</a> · <a href="/healthz">healthz</a></p>
</footer>
</main>
</body>
</html>
`;
  return page.text;
}

/** Where a peer is: its address, or the broker a tunnel over MQTT runs through. */
function peerAddress(address: string, port: number, transport: string | undefined): Html {
  return transport === 'mqtt' ? html`<span class="muted">MQTT via</span> <code>${address}</code>` : html`<code>${formatAddress(address, port)}</code>`;
}

function tunnelsSection(state: NodeState, now: number): Html {
  if (state.tunnels.length === 0) {
    return html`<section id="tunnels"><h2>Tunnels this node dials</h2><p class="note">None: this node dials no tunnel server.</p></section>`;
  }
  const rows = state.tunnels.map((t) => [
    html`<code>${t.url}</code>${t.as !== state.name ? html`<br><span class="muted">as ${t.as}</span>` : ''}`,
    html`${tunnelPill(t)}${t.connections !== undefined ? html`<br><span class="muted">${t.members ?? 0} of ${t.connections} connections</span>` : ''}`,
    t.peer ?? html`<span class="muted">-</span>`,
    t.address !== undefined ? peerAddress(t.address, t.port ?? 0, t.transport) : html`<span class="muted">-</span>`,
    since(t.since, now),
    t.streams,
    html`${formatBytes(t.bytesIn)} / ${formatBytes(t.bytesOut)}`,
    t.connects,
    t.lastError ?? html`<span class="muted">-</span>`,
  ]);
  return html`<section id="tunnels"><h2>Tunnels this node dials</h2>${table(
    ['server', 'state', 'peer', 'address', 'connected since', 'streams#', 'bytes in / out#', 'connects#', 'last error'], rows)}</section>`;
}

/** The mesh's best route to every node this one reaches (src/mesh/). */
function routesSection(state: NodeState, now: number): Html {
  if (state.routes.length === 0) return html``;
  const rows = state.routes.map((r) => [
    r.name, r.nextHop, html`<code>${r.path.join(' → ')}</code>`, r.hops, r.cost, since(r.since, now),
  ]);
  return html`<section id="routes"><h2>Routes of the mesh</h2>${table(['node', 'next hop', 'path', 'hops#', 'cost#', 'best since'], rows)}</section>`;
}

function peersSection(state: NodeState, now: number): Html {
  const server = state.server;
  if (!server) return html``;
  const connected = new Set(server.peers.map((p) => canonicalName(p.name)));
  // Peers the `en` listeners expect but that are not here are what an operator looks for first.
  const missing = [...new Set(state.listeners.flatMap((l) => ('en' in l.target ? [l.target.en] : [])))]
    .filter((name) => !connected.has(canonicalName(name)) && !state.routes.some((r) => r.name === canonicalName(name)));
  const rows: HtmlValue[][] = [
    ...server.peers.map((p) => [
      p.name, html`<span class="pill up">connected</span>${(p.members ?? 1) > 1 ? html`<br><span class="muted">${p.members ?? 1} connections</span>` : ''}`,
      peerAddress(p.address, p.port, p.transport), since(p.since, now),
      html`${p.streams} <span class="muted">of ${p.streamsOpened}</span>`, html`${formatBytes(p.bytesIn)} / ${formatBytes(p.bytesOut)}`,
    ]),
    ...missing.map((name) => [
      name, html`<span class="pill down">not connected</span>`, html`<span class="muted">-</span>`, html`<span class="muted">-</span>`,
      0, html`<span class="muted">-</span>`,
    ]),
  ];
  const body = rows.length > 0
    ? table(['peer', 'state', 'address', 'connected since', 'streams open#', 'bytes in / out#'], rows)
    : html`<p class="note">No peer is connected.</p>`;
  return html`<section id="peers"><h2>Peers of this node's tunnel server <code>${server.url}</code></h2>${body}</section>`;
}

function listenersSection(state: NodeState, recent: RecentActivity): Html {
  const minutes = Math.round(RECENT_WINDOW_MS / 60_000);
  if (state.listeners.length === 0) {
    return html`<section id="listeners"><h2>Listeners</h2><p class="note">None: this node has no proxy listener.</p></section>`;
  }
  const blocks = state.listeners.map((l) => {
    // The config keeps mappings longest first (the order they match in); people scan A to Z.
    const mappings = [...l.mappings].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const rows: HtmlValue[][] = mappings.map((m) => [
      html`<code>${m.path}</code>`, html`<code>${m.ou}</code>`,
      m.ca.length > 0 ? m.ca.join(', ') : html`<span class="muted">any client</span>`,
      statusCounts(recent.statusCounts(l.key, m.path)),
    ]);
    const unrouted = recent.statusCounts(l.key, '-');
    if (unrouted.size > 0) rows.push([UNROUTED, html`<span class="muted">-</span>`, html`<span class="muted">-</span>`, statusCounts(unrouted)]);
    return html`<div class="listener">
<h3><code>${l.key}</code> <span class="target">→ ${listenerTarget(l)}</span> ${targetPill(l)}</h3>
<p class="note line">${plural(l.requests, 'request')} since start · ${l.inFlight} in flight · all time: ${statusCounts(new Map(
      Object.entries(l.statuses).map(([s, n]) => [Number(s), n])))}</p>
${table(['path', 'outgoing URL (ou)', 'allowed clients (ca)', `last ${minutes} min`], rows)}
</div>`;
  });
  return html`<section id="listeners"><h2>Listeners and mappings</h2>${blocks}</section>`;
}

/** `tcp://` listeners (doc/tcp.md): where their connections go, and how many. */
function tcpListenersSection(state: NodeState): Html {
  const tcp = state.tcpListeners ?? [];
  if (tcp.length === 0) return html``;
  const rows: HtmlValue[][] = tcp.map((l) => [
    html`<code>${l.key}</code>`, html`${'ea' in l.target ? l.target.ea : l.target.en} <span class="muted">→</span> <code>${l.to}</code>`,
    l.connected ? html`<span class="pill up">connected</span>` : html`<span class="pill down">not connected</span>`,
    l.ca.length > 0 ? l.ca.join(', ') : html`<span class="muted">any client</span>`,
    html`${l.connections} <span class="muted">(${l.open} open, ${l.refused} refused at once)</span>`,
  ]);
  return html`<section id="tcp-listeners"><h2>TCP listeners</h2>${table(['listener', 'node → address', 'tunnel', 'allowed clients (ca)', 'connections#'], rows)}</section>`;
}

function errorsSection(errors: RecentError[], now: number): Html {
  const none = html`<span class="muted">-</span>`;
  const body = errors.length === 0
    ? html`<p class="note">No failures or tunnel drops since start.</p>`
    : table(['time', 'what', 'code', 'at node', 'where', 'message'], errors.map((e) => e.kind === 'request'
      ? [
        at(e.time, now), statusPill(e.status), html`<code class="nowrap">${e.code}</code>`, e.node,
        html`${e.mapping === '-' ? UNROUTED : html`<code>${e.mapping}</code>`} <span class="muted">on</span> <code>${e.listener}</code>`,
        html`${e.message}<br><span class="muted small">request id <code>${e.id}</code></span>`,
      ]
      : [
        at(e.time, now), html`<span class="pill down">tunnel down</span>`,
        e.code === undefined ? none : html`<code class="nowrap">${e.code}</code>`, e.peer,
        e.side === 'client'
          ? html`<code>${e.tunnel}</code> <span class="muted">(dialed by this node)</span>`
          : html`<span class="muted">peer of this node's server</span>`,
        e.message,
      ]));
  return html`<section id="errors"><h2>Recent errors <span class="muted">(last ${errors.length}, newest first)</span></h2>${body}</section>`;
}

/**
 * A table that turns into cards on a phone; a column name ending in '#' is numeric (the '#'
 * is not shown). Each cell carries its column name for the card layout.
 */
function table(columns: string[], rows: HtmlValue[][]): Html {
  const cols = columns.map((c) => ({ label: c.replace(/#$/, ''), num: c.endsWith('#') }));
  const head = cols.map((c) => html`<th${c.num ? Html.trusted(' class="num"') : ''}>${c.label}</th>`);
  const body = rows.map((r) => html`<tr>${r.map((cell, i) => {
    const c = cols[i] ?? { label: '', num: false }; // rows have one cell per column
    // One wrapper per cell: the phone layout places the label and the value side by side.
    return html`<td data-label="${c.label}"${c.num ? Html.trusted(' class="num"') : ''}><span class="v">${cell}</span></td>`;
  })}</tr>`);
  return html`<table class="rows"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function tunnelPill(t: TunnelState): Html {
  if (t.connected) return html`<span class="pill up">connected</span>`;
  switch (t.state) {
    case 'connecting': return html`<span class="pill wait">connecting</span>`;
    case 'waiting': return html`<span class="pill down">down, retrying</span>`;
    case 'idle': return html`<span class="pill off">idle (dials on first use)</span>`;
    default: return html`<span class="pill off">${t.state}</span>`;
  }
}

/** Requests recorded under mapping '-': no mapping matched their path. */
const UNROUTED = html`<span class="muted" title="no mapping matched the request's path">(not routed)</span>`;

function targetPill(l: ListenerState): Html {
  if ('ea' in l.target) return l.connected ? html`<span class="pill up">tunnel up</span>` : html`<span class="pill down">tunnel down</span>`;
  return l.connected ? html`<span class="pill up">peer connected</span>` : html`<span class="pill down">peer not connected</span>`;
}

function listenerTarget(l: ListenerState): Html {
  return 'ea' in l.target ? html`ea <code>${l.target.ea}</code>` : html`en <code>${l.target.en}</code>`;
}

function statusCounts(counts: Map<number, number>): Html {
  if (counts.size === 0) return html`<span class="muted">no requests</span>`;
  const chips = [...counts].sort(([a], [b]) => a - b).map(([status, n]) => html`${statusPill(status, n)}`);
  return html`<span class="counts">${join(chips, ' ')}</span>`;
}

function statusPill(status: number, n?: number): Html {
  const cls = status >= 200 && status < 600 && status !== 499 ? `s${Math.floor(status / 100)}` : 's0';
  return html`<span class="pill ${cls}" title="HTTP ${status}">${status}${n === undefined ? '' : html` ×${n}`}</span>`;
}

function since(iso: string | undefined, now: number): Html {
  if (!iso) return html`<span class="muted">-</span>`;
  return html`<time datetime="${iso}" title="${iso}">${formatDuration((now - Date.parse(iso)) / 1000)} ago</time>`;
}

function at(time: Date, now: number): Html {
  const iso = time.toISOString();
  return html`<time class="nowrap" datetime="${iso}" title="${iso}">${iso.slice(11, 19)}Z</time> <span class="muted nowrap">${formatDuration((now - time.getTime()) / 1000)} ago</span>`;
}

function stamp(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z`;
}

