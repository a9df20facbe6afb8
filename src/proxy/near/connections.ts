/**
 * The client connections of one listener: how many each address holds (the per-address cap),
 * how many exchanges each has open (pipelining), and which must close once those are done.
 * HTTP/1.1 answers in order on one connection, so what a connection may still do depends on
 * the exchanges ahead of it.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WestError } from '../../errors.js';

interface ConnectionState {
  /** Exchanges begun on this connection and not ended, each with what to do if it closes. */
  open: Set<() => void>;
  /** No further request on it is served; it closes once `open` reaches 0. */
  closing: boolean;
}

export class ConnectionTable {
  private readonly byAddress = new Map<string, number>();
  private readonly states = new WeakMap<Duplex, ConnectionState>();
  /** The exchange on a connection whose request body is still being read, and how it fails. */
  private readonly bodies = new WeakMap<Duplex, (err: WestError) => boolean>();

  /**
   * Counts a new connection against its address's cap (0: none); false when it is one past
   * the cap. The count drops when the socket closes.
   */
  admit(socket: Socket, cap: number): boolean {
    const address = socket.remoteAddress ?? '';
    const open = (this.byAddress.get(address) ?? 0) + 1;
    if (cap > 0 && open > cap) return false;
    this.byAddress.set(address, open);
    socket.once('close', () => {
      const left = (this.byAddress.get(address) ?? 1) - 1;
      if (left > 0) this.byAddress.set(address, left);
      else this.byAddress.delete(address);
    });
    return true;
  }

  /** True once `socket` serves nothing more (a request pipelined behind its close). */
  closing(socket: Duplex): boolean {
    return this.states.get(socket)?.closing ?? false;
  }

  /**
   * An exchange begins on `socket`; `onClose` runs if the connection closes before it ends (a
   * response queued behind another never learns it otherwise). One 'close' listener per
   * connection, however many requests a client pipelines.
   */
  begin(socket: Duplex, onClose: () => void): void {
    this.stateOf(socket).open.add(onClose);
  }

  /** The exchange that began with `onClose` ended (answered, failed or abandoned). */
  end(socket: Duplex, onClose: () => void): void {
    const state = this.stateOf(socket);
    state.open.delete(onClose);
    if (state.closing && state.open.size === 0) socket.end();
  }

  /** Serve nothing more on `socket`; close it once the exchanges ahead are done. */
  close(socket: Duplex): void {
    const state = this.stateOf(socket);
    state.closing = true;
    if (state.open.size === 0) socket.end();
  }

  /**
   * An exchange on `socket` reads its request body; `broken` fails it if those bytes cannot be
   * parsed (false: the body was whole, the bad bytes come after it).
   */
  readingBody(socket: Duplex, broken: (err: WestError) => boolean): void {
    this.bodies.set(socket, broken);
  }

  /** That body was read to its end. */
  bodyRead(socket: Duplex, broken: (err: WestError) => boolean): void {
    if (this.bodies.get(socket) === broken) this.bodies.delete(socket);
  }

  /**
   * The client's bytes could not be parsed in the middle of a request body (a bad chunk size):
   * the exchange reading it fails with `err`. False when no body was being read.
   */
  bodyBroken(socket: Duplex, err: WestError): boolean {
    const broken = this.bodies.get(socket);
    if (!broken) return false;
    this.bodies.delete(socket);
    return broken(err);
  }

  /** Exchanges open on `socket`: answers still owed to its client. */
  busy(socket: Duplex): boolean {
    return this.stateOf(socket).open.size > 0;
  }

  private stateOf(socket: Duplex): ConnectionState {
    let state = this.states.get(socket);
    if (!state) {
      const created: ConnectionState = { open: new Set(), closing: false };
      socket.once('close', () => { for (const onClose of [...created.open]) onClose(); });
      this.states.set(socket, created);
      state = created;
    }
    return state;
  }
}
