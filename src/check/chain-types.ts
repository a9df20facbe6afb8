/** The shapes of a walked chain, apart from the walk so the tree renderer can use them without importing it. */
import type { ListenerConfig, MappingConfig } from '../config/types.js';
import type { ListenerRef, TopoNode } from './deployment.js';

/** One listener mapping a request passes, and the node that performs its `ou`. */
export interface Step {
  node: TopoNode;
  listener: ListenerConfig;
  mapping: MappingConfig;
  /** Undefined when the tunnel or peer does not resolve (reported by topology.ts). */
  performer: TopoNode | undefined;
  /** The mesh's relays between the listener's node and the performer, when it is routed by name. */
  via?: TopoNode[];
}

export type ChainEnd =
  | { kind: 'origin'; url: URL }
  | { kind: 'unresolved'; why: string }
  | { kind: 'loop'; back: ListenerRef }
  | { kind: 'no mapping'; at: ListenerRef; path: string }
  | { kind: 'truncated' };

export interface Chain {
  steps: Step[];
  end: ChainEnd;
}
