/**
 * The samples' READMEs, followed as a new user would: the ```sh block's `west origin`, each
 * `west -c`, then its `curl`, which must end in a 200 (the ports are moved to free ones, the
 * same number to the same port across the configs and the commands).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fetchText, waitFor } from '../helpers/net.js';
import { portedSamples, retryIfPortTaken, SAMPLES, stopAll, tempDir, WestProcess } from '../helpers/west.js';

let dir: string;
let cleanup: () => Promise<void>;

before(async () => {
  ({ dir, cleanup } = await tempDir('west-readme-'));
});

after(async () => {
  await stopAll();
  await cleanup();
});

interface Steps {
  originPort: number;
  configs: string[];
  curl: string;
}

/** The commands of a sample README's first ```sh block. */
function steps(sample: string): Steps {
  const text = readFileSync(path.join(SAMPLES, sample, 'README.md'), 'utf8');
  const block = /```sh\n([\s\S]*?)```/.exec(text)?.[1] ?? '';
  const lines = block.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter((l) => l !== '');
  const origin = lines.map((l) => /^west origin --port (\d+)$/.exec(l)).find((m) => m);
  assert.ok(origin, `${sample}/README.md starts an origin with "west origin --port N":\n${block}`);
  const configs = lines.flatMap((l) => /^west -c sample\/(\S+\.json)$/.exec(l)?.[1] ?? []);
  const curl = lines.map((l) => /^curl (?:-i )?(http:\/\/\S+)$/.exec(l)).find((m) => m)?.[1];
  assert.ok(curl, `${sample}/README.md ends in a curl`);
  assert.ok(configs.length >= 2, `${sample}/README.md starts its nodes`);
  return { originPort: Number(origin[1]), configs, curl };
}

describe('every sample README ends in a 200', () => {
  for (const sample of ['case1', 'case2', 'case3', 'case4', 'mesh', 'mqtt']) {
    test(`sample/${sample}/README.md`, async () => {
      const s = steps(sample);
      const started = await retryIfPortTaken(async () => {
        const { paths, ports } = await portedSamples(dir, s.configs, [s.originPort, Number(new URL(s.curl).port)]);
        const procs: WestProcess[] = [];
        try {
          const origin = WestProcess.spawn(['origin', '--port', String(ports.get(s.originPort))]);
          procs.push(origin);
          await waitFor('west origin to listen', () => {
            if (origin.exitCode !== null) throw new Error(`west origin exited: ${origin.stderr}`);
            return origin.stderr.includes('answering on');
          });
          for (const c of s.configs) procs.push(await WestProcess.start(paths[c]!));
          return { ports, procs };
        } catch (err) {
          await Promise.all(procs.map((p) => p.stop()));
          throw err;
        }
      });
      try {
        const url = new URL(s.curl);
        url.port = String(started.ports.get(Number(url.port)));
        // The nodes answer 503 until their tunnels are up (start order does not matter).
        const r = await waitFor(`${s.curl} to answer 200`, async () => {
          const answer = await fetchText(url.href);
          return answer.status === 200 ? answer : undefined;
        }, 20_000);
        assert.match(r.text, /hello from the demo origin/);
      } finally {
        await Promise.all(started.procs.map((p) => p.stop()));
      }
    });
  }
});

describe('the README quick start', () => {
  test('npm start\'s demo answers every command of the quick start (ports moved to free ones)', async () => {
    const text = readFileSync(path.join(SAMPLES, '..', 'README.md'), 'utf8');
    const block = /## Quick start[\s\S]*?```sh\n[\s\S]*?```[\s\S]*?```sh\n([\s\S]*?)```/.exec(text)?.[1] ?? '';
    const commands = block.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter((l) => l !== '');
    const urls = commands.map((l) => /^(?:curl|wget -qO-) (http:\/\/\S+)$/.exec(l)?.[1]);
    assert.ok(commands.length >= 3 && urls.every((u) => u !== undefined), `the quick start's second block is curl/wget lines:\n${block}`);
    const started = await retryIfPortTaken(async () => {
      // The demo's config and its echo origin (what `west demo` runs), on free ports.
      const { paths, ports } = await portedSamples(dir, ['demo/demo.json'], [9901]);
      const procs: WestProcess[] = [];
      try {
        const origin = WestProcess.spawn(['origin', '--port', String(ports.get(9901))]);
        procs.push(origin);
        await waitFor('west origin to listen', () => {
          if (origin.exitCode !== null) throw new Error(`west origin exited: ${origin.stderr}`);
          return origin.stderr.includes('answering on');
        });
        procs.push(await WestProcess.start(paths['demo/demo.json']!));
        return { ports, procs };
      } catch (err) {
        await Promise.all(procs.map((p) => p.stop()));
        throw err;
      }
    });
    try {
      for (const u of urls) {
        const url = new URL(u);
        url.port = String(started.ports.get(Number(url.port)));
        const r = await waitFor(`${u} to answer 200`, async () => {
          const answer = await fetchText(url.href);
          return answer.status === 200 ? answer : undefined;
        }, 20_000);
        assert.ok(r.text.length > 0, u);
        if (url.pathname === '/') assert.match(r.text, /--- west object ---/);
      }
    } finally {
      await Promise.all(started.procs.map((p) => p.stop()));
    }
  });
});
