/**
 * The topic rules a broker must enforce for west (doc/mqtt.md gives them as mosquitto
 * `pattern` lines): user U publishes only on `west/+/U/+/up` and reads only `west/+/U/+/down`
 * as a client, and reads `west/U/+/+/up` and publishes on `west/U/+/+/down` as a server. So a
 * gateway can neither read nor write another's tunnels. The embedded broker applies them.
 */

/** mosquitto ACL `pattern` lines (`%u` is the MQTT user name). */
export const ACL_PATTERNS = [
  'pattern write west/+/%u/+/up',
  'pattern read west/+/%u/+/down',
  'pattern read west/%u/+/+/up',
  'pattern write west/%u/+/+/down',
] as const;

type Access = 'read' | 'write';

/** Whether `user` may publish on (write) or subscribe to (read) `topic` under ACL_PATTERNS. */
export function aclAllows(user: string, topic: string, access: Access): boolean {
  if (user === '' || /[+#/]/.test(user)) return false;
  const levels = topic.split('/');
  return ACL_PATTERNS.some((line) => {
    const [, mode, pattern = ''] = line.split(' ');
    if (mode !== access) return false;
    const want = pattern.replace('%u', user).split('/');
    // A pattern's `+` admits any one level (a subscription's `+` too); anything else must be equal.
    return want.length === levels.length && want.every((w, i) => w === '+' || w === levels[i]);
  });
}
