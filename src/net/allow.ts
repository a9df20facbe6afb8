/** Client address allowlists (`ca`): IPs and CIDRs, IPv4 and IPv6. */
import { BlockList, isIP } from 'node:net';

/** Verdicts remembered per list before the memory starts over. */
const MAX_REMEMBERED = 4096;

export class AddressAllowlist {
  private readonly list = new BlockList();
  private readonly verdicts = new Map<string, boolean>();
  readonly empty: boolean;

  /** Entries are IPs or CIDRs (already validated by the config schema). An empty list allows all. */
  constructor(entries: string[]) {
    this.empty = entries.length === 0;
    for (const entry of entries) {
      const [addr = '', bits] = entry.split('/');
      const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.list.addAddress(addr, family);
      else this.list.addSubnet(addr, Number(bits), family);
    }
  }

  allows(address: string | undefined): boolean {
    if (this.empty) return true;
    if (!address) return false;
    // BlockList.check builds a SocketAddress each call (about 3 % of a small request's CPU,
    // measured): clients are few, so verdicts are remembered, in a bounded map.
    const known = this.verdicts.get(address);
    if (known !== undefined) return known;
    const verdict = this.check(address);
    if (this.verdicts.size >= MAX_REMEMBERED) this.verdicts.clear();
    this.verdicts.set(address, verdict);
    return verdict;
  }

  private check(address: string): boolean {
    // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    const addr = mapped?.[1] ?? address;
    return this.list.check(addr, isIP(addr) === 6 ? 'ipv6' : 'ipv4');
  }
}
