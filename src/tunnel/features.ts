/**
 * Optional abilities within one wire version, announced on the upgrade (X-West-Features),
 * each side listing what it can receive; a node that lists nothing (an older one) is sent none
 * of them. `informational`: RESPONSE frames with a 1xx status before the final one.
 * `trailers`: a TRAILERS frame (0x07) just before a direction's END.
 * `connection-window`: WINDOW frames on stream 0, a window for the whole tunnel (see flow.ts);
 * it applies only when both sides announce it.
 * `pool`: the tunnel server takes several connections of one client (same `X-West-Pool` id) as
 * one peer (src/tunnel/pool.ts); a client dials more than one only to a server that announces
 * it, over wire version 3 (a node held at `west.wire: 2` neither announces nor uses it).
 * `tcp`: OPEN frames of kind `tcp`, raw TCP streams (doc/tcp.md); a node that did not announce
 * it would close the whole tunnel (1002) on one, so none is ever sent to it.
 */
export const OUR_FEATURES = ['informational', 'trailers', 'connection-window', 'pool', 'tcp'] as const;
export type Feature = (typeof OUR_FEATURES)[number];
