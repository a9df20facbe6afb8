/**
 * nginx (Debian's nginx-light) as the production-proxy reference line: run as the benchmark's
 * own process (`nginx -p <dir> -c <conf> -g 'daemon off;'`, one worker) on a free loopback port,
 * proxying to the origin over HTTP/1.1 with an upstream keep-alive pool, no access log, its
 * error log and temporary files in a directory of its own.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort, waitFor200 } from './net.js';
import { spawnProgram } from './procs.js';
import { DEBIAN_PACKAGE, findProgram, warnLoudly } from './programs.js';
import { LABEL, type Target } from './topology.js';

function nginxDir(workDir: string): string {
  return path.join(workDir, 'nginx');
}

/** The configuration: one server, every path proxied to the origin unchanged. */
export function nginxConf(dir: string, listenPort: number, originPort: number): string {
  const tmp = (name: string): string => path.join(dir, name);
  return `# Written by bench/nginx.ts for one benchmark run.
${process.getuid?.() === 0 ? 'user root;  # the workers must write the temporary files in this 0700 directory\n' : ''}worker_processes 1;
pid ${tmp('nginx.pid')};
error_log ${tmp('error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${tmp('client_body')};
  proxy_temp_path ${tmp('proxy')};
  fastcgi_temp_path ${tmp('fastcgi')};
  uwsgi_temp_path ${tmp('uwsgi')};
  scgi_temp_path ${tmp('scgi')};
  upstream origin {
    server 127.0.0.1:${originPort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${listenPort};
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/**
 * Starts nginx in front of the origin; undefined (with a loud warning) when nginx is not
 * installed, so the run goes on without that line.
 */
export async function startNginx(originPort: number, workDir: string): Promise<Target | undefined> {
  const nginx = findProgram('nginx');
  if (!nginx) {
    warnLoudly([
      'nginx is not installed: the nginx reference line is left out.',
      `Install it with: apt-get install ${DEBIAN_PACKAGE.nginx}`,
    ]);
    return undefined;
  }
  const dir = nginxDir(workDir);
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  await writeFile(conf, nginxConf(dir, port, originPort));
  // -e: the error log before the configuration is read (else /var/log/nginx/error.log).
  const child = spawnProgram(nginx, ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf, '-g', 'daemon off;'], { name: 'nginx' });
  const base = `http://127.0.0.1:${port}/ng`;
  await Promise.race([
    waitFor200(`${base}/small`),
    child.exited.then((code) => { throw new Error(`nginx exited with ${code ?? child.signal} at start-up:\n${child.stderr.slice(-3000)}`); }),
  ]);
  return { label: LABEL.nginx, base, hops: 1, west: [], proxies: [{ name: 'nginx', pid: child.pid }] };
}

/** What nginx wrote to its error log (warn and above) during the run, as a markdown paragraph. */
export async function nginxLogText(workDir: string, limit = 10): Promise<string> {
  let text: string;
  try {
    text = await readFile(path.join(nginxDir(workDir), 'error.log'), 'utf8');
  } catch {
    return 'nginx wrote no error log.';
  }
  const lines = text.split('\n').filter((l) => l.trim() && !l.includes('[notice]'));
  if (lines.length === 0) return 'nginx logged no warnings or errors.';
  const more = lines.length > limit ? `\n… and ${lines.length - limit} more lines` : '';
  return `nginx logged ${lines.length} line(s) at warn/error level:\n\n\`\`\`\n${lines.slice(0, limit).join('\n')}${more}\n\`\`\``;
}
