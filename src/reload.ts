/**
 * What a SIGHUP reload changes: a pure comparison of the running config and the new one,
 * so the node touches only what differs and tunnels that did not change stay up.
 */
import type { ClientConfig, ListenerConfig, NodeConfig } from './config/types.js';

export interface ReloadPlan {
  /** Set when the new config cannot be applied without a restart; nothing is changed. */
  refused?: string;
  /** Tunnel clients by URL. */
  clients: { add: ClientConfig[]; remove: string[]; replace: ClientConfig[] };
  /**
   * Listeners by endpoint: new ones bind, removed ones drain, kept ones take the new mappings.
   * A listener whose scheme (http/https) or certificate and key changed is replaced: a new
   * server binds and the old one drains.
   */
  listeners: { add: ListenerConfig[]; remove: string[]; update: ListenerConfig[]; replace: ListenerConfig[]; rotate: ListenerConfig[] };
  /** The tunnel server must be rebound (its URL changed, or it appears or goes). */
  rebindServer: boolean;
  /** Same address and certificates, other admission settings (claim, tokens, wsts.ca): applied in place. */
  serverUpdate: boolean;
  rebindControl: boolean;
  tuning: boolean;
}

/** Resolved configs are plain data plus URLs (which serialise to their href). */
function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * What identifies a listener across reloads: its address (so http -> https on one port is the
 * same listener, changed). Port 0 binds a fresh port each time: such listeners are told apart
 * by their key as written (`http://127.0.0.1:0` and `https://127.0.0.1:0` are two).
 */
export function endpointKey(l: { host: string; port: number; key: string }): string {
  return l.port === 0 ? l.key : `${l.host}:${l.port}`;
}

export function planReload(current: NodeConfig, next: NodeConfig): ReloadPlan {
  const plan: ReloadPlan = {
    clients: { add: [], remove: [], replace: [] },
    listeners: { add: [], remove: [], update: [], replace: [], rotate: [] },
    rebindServer: false,
    serverUpdate: false,
    rebindControl: false,
    tuning: !same(current.tuning, next.tuning),
  };
  if (current.name !== next.name) {
    plan.refused = `west.nm changed from ${JSON.stringify(current.name)} to ${JSON.stringify(next.name)}: restart west to rename a node`;
    return plan;
  }
  if (!same(current.wazigate, next.wazigate)) {
    plan.refused = 'the wazigate settings changed (west.wazigate or a wazigate listener): restart west to apply them';
    return plan;
  }
  if ((current.workers ?? 'auto') !== (next.workers ?? 'auto')) {
    plan.refused = `west.workers changed from ${JSON.stringify(current.workers ?? 'auto')} to ${JSON.stringify(next.workers ?? 'auto')}: restart west to change how many workers run`;
    return plan;
  }

  const oldClients = new Map(current.clients.map((c) => [c.url, c]));
  const newClients = new Map(next.clients.map((c) => [c.url, c]));
  for (const [url, c] of newClients) {
    const old = oldClients.get(url);
    if (!old) plan.clients.add.push(c);
    else if (!same(old, c)) plan.clients.replace.push(c);
  }
  for (const url of oldClients.keys()) if (!newClients.has(url)) plan.clients.remove.push(url);

  const oldListeners = new Map(current.listeners.map((l) => [endpointKey(l), l]));
  const newListeners = new Map(next.listeners.map((l) => [endpointKey(l), l]));
  for (const [key, l] of newListeners) {
    const old = oldListeners.get(key);
    if (!old) plan.listeners.add.push(l);
    // An https listener with a new certificate or key takes it in place (open connections
    // stay); http <-> https is a change of tlsMaterial too (an http listener has none) and
    // rebuilds the listener.
    else if (old.tlsMaterial && l.tlsMaterial && !same(old.tlsMaterial, l.tlsMaterial)) plan.listeners.rotate.push(l);
    else if (!same(old.tlsMaterial, l.tlsMaterial)) plan.listeners.replace.push(l);
    else if (!same(old, l)) plan.listeners.update.push(l);
  }
  for (const key of oldListeners.keys()) if (!newListeners.has(key)) plan.listeners.remove.push(key);

  const s0 = current.server;
  const s1 = next.server;
  // Tokens are a Map, which JSON does not serialise: compare them as entry lists.
  const admission = (s: NonNullable<NodeConfig['server']>): unknown => ({ ...s, tokens: s.tokens ? [...s.tokens] : undefined });
  plan.rebindServer = (s0 === undefined) !== (s1 === undefined) ||
    (s0 !== undefined && s1 !== undefined && (s0.url !== s1.url || !same(s0.tlsMaterial, s1.tlsMaterial) || !same(s0.mqtt, s1.mqtt)));
  plan.serverUpdate = !plan.rebindServer && s0 !== undefined && s1 !== undefined && !same(admission(s0), admission(s1));
  plan.rebindControl = !same(current.control, next.control);
  return plan;
}

/** A one-line summary of a plan for the log. */
export function describePlan(plan: ReloadPlan): Record<string, unknown> {
  return {
    tunnelsAdded: plan.clients.add.map((c) => c.url),
    tunnelsRemoved: plan.clients.remove,
    tunnelsReplaced: plan.clients.replace.map((c) => c.url),
    listenersAdded: plan.listeners.add.map((l) => l.key),
    listenersRemoved: plan.listeners.remove,
    listenersUpdated: plan.listeners.update.map((l) => l.key),
    listenersRotated: plan.listeners.rotate.map((l) => l.key),
    listenersReplaced: plan.listeners.replace.map((l) => l.key),
    server: plan.rebindServer ? 'rebound' : plan.serverUpdate ? 'admission settings changed' : 'unchanged',
    control: plan.rebindControl ? 'rebound' : 'unchanged',
    tuning: plan.tuning ? 'changed' : 'unchanged',
  };
}
