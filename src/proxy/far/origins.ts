/**
 * Connection pools to origins, one set per node. Ordinary requests to plain-HTTP origins go
 * through west's own HTTP/1.1 client (h1/: the request written from the OPEN's head in one
 * piece, the answer read by Node's parser), to https origins through undici, whose HTTP/1.1
 * client costs well under half the CPU of Node's `http.request` per request (measured in
 * doc/benchmarks.md); protocol upgrades, rare and long-lived, use Node's client.
 */
import http from 'node:http';
import https from 'node:https';
import { Agent } from 'undici';
import { H1Pool } from './h1/pool.js';

export class OriginPools {
  /** For upgrades: one connection each, handed over to the upgraded protocol. */
  readonly httpAgent = new http.Agent();
  readonly httpsAgent = new https.Agent();
  /** Keep-alive connections to plain-HTTP origins; a new connect timeout applies to new connections. */
  readonly h1 = new H1Pool(() => this.connectTimeoutMs);
  private agent: Agent;
  connectTimeoutMs: number;

  constructor(connectTimeoutMs: number) {
    this.connectTimeoutMs = connectTimeoutMs;
    this.agent = OriginPools.makeAgent(connectTimeoutMs);
  }

  /** Keep-alive pools per origin. Timeouts are west's own (responseTimeout, idleTimeout): none here. */
  private static makeAgent(connectTimeoutMs: number): Agent {
    return new Agent({ connect: { timeout: connectTimeoutMs }, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 4000 });
  }

  get connectTimeoutS(): number {
    return this.connectTimeoutMs / 1000;
  }

  get dispatcher(): Agent {
    return this.agent;
  }

  /** A new connect timeout applies to new requests; requests in flight keep their pool. */
  setConnectTimeout(ms: number): void {
    if (ms === this.connectTimeoutMs) return;
    const old = this.agent;
    this.connectTimeoutMs = ms;
    this.agent = OriginPools.makeAgent(ms);
    old.close().catch(() => {});
  }

  close(): void {
    this.h1.close();
    this.agent.destroy().catch(() => {});
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
