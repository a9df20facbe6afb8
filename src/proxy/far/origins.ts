/**
 * Connection pools to origins, one set per node. Ordinary requests go through undici, whose
 * HTTP/1.1 client costs well under half the CPU of Node's `http.request` per request
 * (measured in doc/benchmarks.md); protocol upgrades, rare and long-lived, use Node's client.
 */
import http from 'node:http';
import https from 'node:https';
import { Agent } from 'undici';

export class OriginPools {
  /** For upgrades: one connection each, handed over to the upgraded protocol. */
  readonly httpAgent = new http.Agent();
  readonly httpsAgent = new https.Agent();
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
    this.agent.destroy().catch(() => {});
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
