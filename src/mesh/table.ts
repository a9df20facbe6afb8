/**
 * The route table of the mesh (pure: no sockets, no timers). Each tunnel is a *link*; over a
 * link the peer advertises, for every node it reaches, the path of node names to it (a path
 * vector, starting with the peer itself). The table keeps what each link advertised and picks
 * one best route per destination: lowest cost (each link's cost plus what the peer advertised;
 * a link costs 1 unless configured), then fewest hops, then the path's names in order, so every
 * node picks the same way whatever order adverts arrive in.
 *
 * Loops are refused by construction: a path that names this node, repeats a name, does not end
 * at its destination, or is longer than the hop limit is never learned.
 */

/** What a peer says it reaches: `path` runs from the peer itself to `dest` (both included). */
export interface Advert {
  dest: string;
  path: string[];
  /** The peer's own cost to `dest` (0 for the peer itself). */
  cost: number;
}

/** The best way to one destination: the link to send its streams on, and the path beyond. */
export interface Route<L> {
  dest: string;
  link: L;
  /** Node names from the next hop to `dest` (both included): `path.length` is the hop count. */
  path: string[];
  cost: number;
  /** When this route became the best one (ms since epoch). */
  since: number;
}

/** Which destinations (beyond the peer itself) a link's peer may advertise (`west.learn`). */
export type LearnFilter = (dest: string) => boolean;

interface Link {
  peer: string;
  cost: number;
  accepts: LearnFilter;
  /** What the peer advertised, by destination (its own name included, as a direct route). */
  learned: Map<string, { path: string[]; cost: number }>;
}

/** Most destinations one link may advertise: a hostile peer cannot grow the table without end. */
export const MAX_ROUTES_PER_LINK = 4096;
/** Highest cost an advert may carry. */
export const MAX_COST = 1_000_000;

export class RouteTable<L> {
  private readonly links = new Map<L, Link>();
  private readonly best = new Map<string, Route<L>>();
  /** This node's name and the other names it presents to tunnel servers (`wstc[url].nm`). */
  private readonly selves: Set<string>;

  /**
   * @param self this node's name (canonical): never a destination, refused in any path
   * @param maxHops longest path learned or advertised (the hop limit, `west.maxHops`)
   * @param aliases other names this node goes by (refused in paths like `self`)
   */
  constructor(readonly self: string, readonly maxHops: number, aliases: readonly string[] = [], private readonly now: () => number = Date.now) {
    this.selves = new Set([self, ...aliases]);
  }

  /** A tunnel came up: its peer is reachable directly. Returns the destinations whose best route changed. */
  addLink(link: L, peer: string, cost = 1, accepts: LearnFilter = () => true): string[] {
    const learned = new Map<string, { path: string[]; cost: number }>();
    if (!this.selves.has(peer)) learned.set(peer, { path: [peer], cost: 0 });
    this.links.set(link, { peer, cost, accepts, learned });
    return this.recompute([peer]);
  }

  /** A tunnel went down: everything learned over it is withdrawn at once. */
  removeLink(link: L): string[] {
    const l = this.links.get(link);
    if (!l) return [];
    this.links.delete(link);
    return this.recompute([...l.learned.keys()]);
  }

  /**
   * An advertisement over `link`: routes announced (replacing what the link said before about
   * each destination) and destinations withdrawn. An announced path that breaks a rule, or
   * names a destination the link's filter refuses, is taken as a withdrawal. Returns the
   * destinations whose best route changed.
   */
  learn(link: L, announced: readonly Advert[], withdrawn: readonly string[] = []): string[] {
    const l = this.links.get(link);
    if (!l) return [];
    const touched: string[] = [];
    for (const dest of withdrawn) {
      // The peer itself stays reachable while its tunnel is up, whatever it says.
      if (dest === l.peer) continue;
      if (l.learned.delete(dest)) touched.push(dest);
    }
    for (const a of announced) {
      if (a.dest === l.peer && a.path.length === 1) continue;
      // A path starts with the name the peer is known by on this link (the name it presented,
      // or the server's): a peer cannot pass its routes off as another node's.
      if (a.path[0] === l.peer && this.acceptable(a) && l.accepts(a.dest) && (l.learned.has(a.dest) || l.learned.size < MAX_ROUTES_PER_LINK)) {
        l.learned.set(a.dest, { path: [...a.path], cost: a.cost });
        touched.push(a.dest);
      } else if (a.dest !== l.peer && l.learned.delete(a.dest)) {
        touched.push(a.dest);
      }
    }
    return this.recompute(touched);
  }

  /** Whether `name` is this node (its name or an alias). */
  isSelf(name: string): boolean {
    return this.selves.has(name);
  }

  /** Whether an announced path could be a route: loop-free, bounded, ending where it says. */
  acceptable(a: Advert): boolean {
    const { path, dest, cost } = a;
    if (this.selves.has(dest) || path.length === 0 || path.length > this.maxHops) return false;
    if (path[path.length - 1] !== dest) return false;
    if (!Number.isInteger(cost) || cost < 0 || cost > MAX_COST) return false;
    return !path.some((n) => this.selves.has(n)) && new Set(path).size === path.length;
  }

  lookup(dest: string): Route<L> | undefined {
    return this.best.get(dest);
  }

  /** Every best route, by destination name. */
  routes(): Route<L>[] {
    return [...this.best.values()].sort((a, b) => (a.dest < b.dest ? -1 : a.dest > b.dest ? 1 : 0));
  }

  /** Every destination with a route, and this node. */
  destinations(): string[] {
    return [this.self, ...this.best.keys()];
  }

  /**
   * What this node tells the peer on `link` about `dest`: itself, or its best route with its
   * own name in front (`as`: the name the peer knows it by on that link, by default `self`);
   * undefined (a withdrawal) when it has none, when that route runs through the same link (the
   * peer would only hear its own route back), or past the hop limit.
   */
  advertFor(link: L, dest: string, as = this.self): Advert | undefined {
    if (dest === this.self) return { dest: as, path: [as], cost: 0 };
    const r = this.best.get(dest);
    if (!r || r.link === link || r.path.length + 1 > this.maxHops) return undefined;
    return { dest, path: [as, ...r.path], cost: r.cost };
  }

  private recompute(dests: Iterable<string>): string[] {
    const changed: string[] = [];
    for (const dest of new Set(dests)) {
      const before = this.best.get(dest);
      const after = this.pick(dest);
      if (!after) {
        if (before) {
          this.best.delete(dest);
          changed.push(dest);
        }
      } else if (!before || before.link !== after.link || before.cost !== after.cost || before.path.join('\n') !== after.path.join('\n')) {
        this.best.set(dest, { ...after, since: this.now() });
        changed.push(dest);
      }
    }
    return changed;
  }

  private pick(dest: string): Omit<Route<L>, 'since'> | undefined {
    let best: Omit<Route<L>, 'since'> | undefined;
    for (const [link, l] of this.links) {
      const r = l.learned.get(dest);
      if (!r) continue;
      const candidate = { dest, link, path: r.path, cost: r.cost + l.cost };
      if (!best || better(candidate, best)) best = candidate;
    }
    return best;
  }
}

/** Lower cost, then fewer hops, then the names of the path in order: a total, stable order. */
function better(a: { path: string[]; cost: number }, b: { path: string[]; cost: number }): boolean {
  if (a.cost !== b.cost) return a.cost < b.cost;
  if (a.path.length !== b.path.length) return a.path.length < b.path.length;
  const x = a.path.join('\n');
  const y = b.path.join('\n');
  return x < y;
}
