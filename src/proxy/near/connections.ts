/**
 * The client connections of one listener: how many each address holds (the per-address cap),
 * how many exchanges each has open (pipelining), and which must close once those are done.
 * HTTP/1.1 answers in order on one connection, so what a connection may still do depends on
 * the exchanges ahead of it.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

interface ConnectionState {
  /** Exchanges begun on this connection and not ended. */
  open: number;
  /** No further request on it is served; it closes once `open` reaches 0. */
  closing: boolean;
}

export class ConnectionTable {
  private readonly byAddress = new Map<string, number>();
  private readonly states = new WeakMap<Duplex, ConnectionState>();

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

  /** An exchange begins on `socket`; false when the connection is closing and it must not be served. */
  begin(socket: Duplex): boolean {
    const state = this.stateOf(socket);
    if (state.closing) return false;
    state.open++;
    return true;
  }

  /** An exchange on `socket` ended (answered, failed or abandoned). */
  end(socket: Duplex): void {
    const state = this.stateOf(socket);
    state.open = Math.max(0, state.open - 1);
    if (state.closing && state.open === 0) socket.end();
  }

  /** Serve nothing more on `socket`; close it once the exchanges ahead are done. */
  close(socket: Duplex): void {
    const state = this.stateOf(socket);
    state.closing = true;
    if (state.open === 0) socket.end();
  }

  /** Exchanges open on `socket`: answers still owed to its client. */
  busy(socket: Duplex): boolean {
    return this.stateOf(socket).open > 0;
  }

  private stateOf(socket: Duplex): ConnectionState {
    let state = this.states.get(socket);
    if (!state) {
      state = { open: 0, closing: false };
      this.states.set(socket, state);
    }
    return state;
  }
}
