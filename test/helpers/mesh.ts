/**
 * A mesh of real west processes built from a short description: which nodes run a tunnel
 * server, which dial which, and what each adds to its config. Tunnel server ports are picked
 * before any node starts (clients must name them) and everything starts over on fresh ports
 * when one was taken meanwhile; listeners and control ports are bound on port 0 and read back.
 */
import type { NodeState } from '../../src/control/state.js';
import { fetchText, freePort, waitFor } from './net.js';
import { retryIfPortTaken, WestProcess, writeConfig } from './west.js';

export interface MeshNodeSpec {
  name: string;
  /** Runs a tunnel server. */
  server?: boolean;
  /** Names of the nodes whose servers this one dials, each with optional `wstc` keys (e.g. cost). */
  dials?: (string | { to: string; keys: Record<string, unknown> })[];
  /** Keys added to `west` (transit, relays, egress, wire, ...). */
  west?: Record<string, unknown>;
  /** `proxy` listeners, keyed `http://127.0.0.1:0` style (one port-0 listener per node is easiest). */
  proxy?: Record<string, Record<string, unknown>>;
}

/** Short timers, so a dropped tunnel is redialled within a second. */
export const MESH_TIMERS = { heartbeat: 1, reconnectMin: 0.1, reconnectMax: 0.5, connectTimeout: 2, drainTimeout: 1 };

export class Mesh {
  readonly nodes = new Map<string, WestProcess>();
  readonly files = new Map<string, string>();
  readonly serverPorts = new Map<string, number>();

  private constructor(readonly dir: string, readonly specs: MeshNodeSpec[]) {}

  static async launch(dir: string, specs: MeshNodeSpec[]): Promise<Mesh> {
    return retryIfPortTaken(async () => {
      const mesh = new Mesh(dir, specs);
      try {
        for (const s of specs) if (s.server) mesh.serverPorts.set(s.name, await freePort());
        for (const s of specs) mesh.files.set(s.name, await writeConfig(dir, `${s.name}.json`, mesh.config(s)));
        for (const s of specs) await mesh.start(s.name);
        return mesh;
      } catch (err) {
        await mesh.stopAll();
        throw err;
      }
    });
  }

  /** The server URL of node `name`. */
  serverUrl(name: string): string {
    const port = this.serverPorts.get(name);
    if (port === undefined) throw new Error(`node ${name} runs no tunnel server`);
    return `ws://127.0.0.1:${port}`;
  }

  config(s: MeshNodeSpec): Record<string, unknown> {
    const wstc: Record<string, unknown> = {};
    for (const d of s.dials ?? []) {
      const [to, keys] = typeof d === 'string' ? [d, {}] : [d.to, d.keys];
      wstc[this.serverUrl(to)] = keys;
    }
    return {
      west: { nm: s.name, cp: '127.0.0.1:0', ...MESH_TIMERS, ...s.west },
      wsts: s.server ? { sp: this.serverUrl(s.name) } : {},
      wstc,
      proxy: s.proxy ?? {},
    };
  }

  /** Starts (or starts again) node `name` with its config. */
  async start(name: string): Promise<WestProcess> {
    const file = this.files.get(name);
    if (!file) throw new Error(`no node ${name}`);
    const p = await WestProcess.start(file);
    this.nodes.set(name, p);
    return p;
  }

  proc(name: string): WestProcess {
    const p = this.nodes.get(name);
    if (!p) throw new Error(`node ${name} is not running`);
    return p;
  }

  async state(name: string): Promise<NodeState> {
    const r = await fetchText(`${this.proc(name).controlUrl()}/state.json`, { timeoutMs: 5000 });
    return JSON.parse(r.text) as NodeState;
  }

  /** Waits until `name` has a route to `dest` (optionally through `via`, or with `hops`). */
  async route(name: string, dest: string, match: { via?: string; hops?: number } = {}, timeoutMs = 15_000): Promise<NodeState['routes'][number]> {
    return waitFor(`a route from ${name} to ${dest}${match.via ? ` via ${match.via}` : ''}`, async () => {
      const r = (await this.state(name)).routes.find((x) => x.name === dest);
      if (!r) return undefined;
      if (match.via !== undefined && r.nextHop !== match.via) return undefined;
      if (match.hops !== undefined && r.hops !== match.hops) return undefined;
      return r;
    }, timeoutMs, 50);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((p) => p.stop(5000)));
    this.nodes.clear();
  }
}
