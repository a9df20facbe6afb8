/** The wazigate topics: `devices/{gatewayID}/tunnel-down/{ref}` (requests) and `.../tunnel-up/{ref}` (answers). */
import { GATEWAY_ID } from './config.js';

const MAX_REF = 2_147_483_647;

/** The gateway and ref a topic of this direction names, or undefined when it is not one. */
export function parseTopic(topic: string, direction: 'tunnel-up' | 'tunnel-down'): { gateway: string; ref: number } | undefined {
  const parts = topic.split('/');
  if (parts.length !== 4 || parts[0] !== 'devices' || parts[2] !== direction) return undefined;
  const gateway = parts[1] ?? '';
  const refText = parts[3] ?? '';
  if (!GATEWAY_ID.test(gateway) || !/^[1-9][0-9]{0,9}$/.test(refText)) return undefined;
  const ref = Number(refText);
  return ref <= MAX_REF ? { gateway, ref } : undefined;
}
