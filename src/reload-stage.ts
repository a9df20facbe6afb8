/**
 * The first half of a reload (node.ts): binding what the new config opens before anything else
 * changes, so that a port that cannot be bound leaves the node as it was.
 */
import type { ControlServer } from './control/server.js';
import type { Endpoint, ListenerConfig, NodeConfig, Tuning } from './config/types.js';
import type { Logger } from './log.js';
import type { ProxyListener } from './proxy/near/listener.js';
import { endpointKey, type ReloadPlan } from './reload.js';
import type { TunnelServer } from './tunnel/server.js';

/** What a reload bound on the side, to swap in once everything is bound. */
export interface Staged {
  listeners: ProxyListener[];
  server?: TunnelServer;
  control?: ControlServer;
}

/** A socket of the old config that a reload lets go of. */
interface Leaving {
  /** The port it is bound to. */
  port: number;
  /** Stops listening, so that the new config can bind the port. */
  unbind(): Promise<void>;
  /** Listens again, when the reload is rolled back. */
  rebind(): Promise<void>;
}

/** The running node, as staging sees it: what it holds now and how it makes more. */
export interface StageHost {
  readonly config: NodeConfig;
  readonly listeners: ReadonlyMap<string, ProxyListener>;
  readonly server: TunnelServer | undefined;
  readonly control: ControlServer | undefined;
  readonly log: Logger;
  makeListener(l: ListenerConfig, tuning: Tuning): ProxyListener;
  makeServer(config: NodeConfig): TunnelServer;
  makeControl(endpoint: Endpoint): ControlServer;
  /** A rollback bound the old config's server or control port anew: the node takes it back. */
  restore(parts: { server?: TunnelServer; control?: ControlServer }): void;
}

/**
 * Binds what a reload opens, before anything else changes. A port the old config holds and
 * the new one binds anew (http -> https, a new certificate, the control port on another
 * interface) cannot be bound twice: the old socket stops listening first (its connections
 * go on) and listens again if the reload is rolled back.
 */
export async function bindStaged(host: StageHost, plan: ReloadPlan, next: NodeConfig): Promise<Staged> {
  const staged: Staged = { listeners: [] };
  const leaving = leavingSockets(host, plan);
  const released: Leaving[] = [];
  const makeRoom = async (port: number): Promise<void> => {
    for (const x of leaving) {
      if (x.port !== 0 && x.port === port && !released.includes(x)) {
        await x.unbind();
        released.push(x);
      }
    }
  };
  try {
    for (const c of [...plan.listeners.add, ...plan.listeners.replace]) {
      await makeRoom(c.port);
      const l = host.makeListener(c, next.tuning);
      staged.listeners.push(l);
      await l.listen();
    }
    if (plan.rebindServer && next.server) {
      await makeRoom(next.server.port);
      staged.server = host.makeServer(next);
      await staged.server.listen();
    }
    if (plan.rebindControl && next.control) {
      await makeRoom(next.control.port);
      staged.control = host.makeControl(next.control);
      await staged.control.listen();
    }
  } catch (err) {
    await Promise.all(staged.listeners.map((l) => l.close()));
    await staged.server?.close();
    await staged.control?.close();
    for (const x of released.reverse()) {
      await x.rebind().catch((e: unknown) => host.log.error('node.reload_rollback_failed', { port: x.port, error: String(e) }));
    }
    throw err;
  }
  return staged;
}

/** What the old config binds and the plan lets go: each can give up its port and take it back. */
function leavingSockets(host: StageHost, plan: ReloadPlan): Leaving[] {
  const out: Leaving[] = [];
  for (const key of [...plan.listeners.remove, ...plan.listeners.replace.map(endpointKey)]) {
    const l = host.listeners.get(key);
    if (!l) continue;
    out.push({
      port: l.port,
      unbind: async () => l.stopAccepting(),
      rebind: () => l.listenAgain(),
    });
  }
  const server = host.server;
  if (plan.rebindServer && server) {
    // The tunnel server cannot stop listening without closing its sessions: it is closed, and
    // rolled back as a new server on the old config (its clients redial).
    out.push({
      port: server.port,
      unbind: () => server.close(),
      rebind: async () => {
        const again = host.makeServer(host.config);
        await again.listen();
        host.restore({ server: again });
      },
    });
  }
  const control = host.control;
  if (plan.rebindControl && control && host.config.control) {
    const endpoint = host.config.control;
    out.push({
      port: control.port,
      unbind: () => control.close(),
      rebind: async () => {
        const again = host.makeControl(endpoint);
        await again.listen();
        host.restore({ control: again });
      },
    });
  }
  return out;
}
