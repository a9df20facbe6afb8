/**
 * The docs cannot drift from the program: every ```json snippet of README.md, doc/*.md and the
 * sample READMEs goes through the real config loader, every `west …` command line in their
 * code blocks uses a command and flags `west --help` lists, `west check` lines on files of
 * this repository run (and a `$ west check …` transcript must be what it prints), and every
 * `jq` filter is run over log lines with a line that is not JSON among them.
 *
 * A comment on the line before a snippet says what it is when it is not a whole config:
 * `<!-- snippet: fragment west -->` (keys of the `west` object, loaded inside a minimal config),
 * `<!-- snippet: invalid bad.json -->` (must be refused; the next block is the exact report,
 * as if the file were called bad.json), `<!-- snippet: log-line -->` (an access-log line: JSON
 * whose fields the doc's field table lists).
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { ROOT, runCli, stopAll } from '../helpers/west.js';

/** The Markdown files that describe west to its users. */
function docFiles(): string[] {
  const doc = readdirSync(path.join(ROOT, 'doc')).filter((f) => f.endsWith('.md')).map((f) => path.join('doc', f));
  const samples = readdirSync(path.join(ROOT, 'sample'))
    .map((d) => path.join('sample', d, 'README.md'))
    .filter((f) => existsSync(path.join(ROOT, f)));
  return ['README.md', ...doc.sort(), 'sample/README.md', ...samples.sort()];
}

interface Block {
  /** Repository-relative file and 1-based line of the opening fence. */
  where: string;
  lang: string;
  text: string;
  /** What the `<!-- snippet: … -->` comment before the block says, if there is one. */
  marker: string | undefined;
  /** The block right after this one (a snippet's expected report). */
  next?: Block;
}

function blocksOf(file: string): Block[] {
  const lines = readFileSync(path.join(ROOT, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( *)```(\S*)\s*$/.exec(lines[i] ?? '');
    if (!open) continue;
    const indent = open[1]?.length ?? 0;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^ *```\s*$/.test(lines[i] ?? ''); i++) body.push((lines[i] ?? '').slice(indent));
    let before = start - 1;
    while (before >= 0 && (lines[before] ?? '').trim() === '') before--;
    const marker = /^<!-- snippet: (.*?) -->$/.exec((lines[before] ?? '').trim())?.[1];
    const block: Block = { where: `${file}:${start + 1}`, lang: open[2] ?? '', text: `${body.join('\n')}\n`, marker };
    const previous = blocks.at(-1);
    if (previous) previous.next = block;
    blocks.push(block);
  }
  return blocks;
}

const ALL = docFiles().flatMap(blocksOf);

// ---- config snippets ----

/** Fields of the table that follows `| field | meaning |` in a doc (the access log's). */
function accessFields(file: string): Set<string> {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const start = text.indexOf('| field | meaning |');
  assert.ok(start >= 0, `${file} has a table of access-log fields`);
  const fields = new Set<string>();
  for (const line of text.slice(start).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    for (const m of (line.split('|')[1] ?? '').matchAll(/`([^`]+)`/g)) fields.add(m[1] ?? '');
  }
  return fields;
}

describe('every ```json snippet of the docs loads through the real config loader', () => {
  const json = ALL.filter((b) => b.lang === 'json');
  test('there are snippets to check', () => {
    assert.ok(json.length >= 4, `${json.length} json snippets`);
  });
  for (const b of json) {
    test(`${b.where}${b.marker ? ` (${b.marker})` : ''}`, () => {
      const [kind = 'config', arg] = (b.marker ?? 'config').split(' ');
      const source = path.join(ROOT, 'snippet.json');
      if (kind === 'config') {
        readConfig(b.text, source, { skipSecrets: true });
      } else if (kind === 'fragment') {
        assert.ok(arg === 'west', `${b.where}: fragments of "${arg}" are not known here`);
        readConfig(`{ "west": { "nm": "snippet", ${b.text} } }`, source, { skipSecrets: true });
      } else if (kind === 'invalid') {
        assert.ok(arg, `${b.where}: "invalid" names the file the report speaks of`);
        assert.ok(b.next, `${b.where}: the report follows the snippet`);
        assert.throws(() => readConfig(b.text, arg), (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.equal(`${err.message}\n`, b.next?.text, `${b.where}: the report that follows is what west prints`);
          return true;
        });
      } else if (kind === 'log-line') {
        const line = JSON.parse(b.text) as Record<string, unknown>;
        const fields = accessFields(b.where.split(':')[0] ?? '');
        for (const key of Object.keys(line)) assert.ok(fields.has(key), `${b.where}: field ${key} is not in the table of fields`);
      } else {
        assert.fail(`${b.where}: unknown snippet marker "${b.marker}"`);
      }
    });
  }
});

// ---- command lines ----

interface OptionSpec {
  /** Takes a value (string, number, array or choices) rather than being a switch. */
  value: boolean;
  choices?: string[];
}

interface CommandSpec {
  options: Map<string, OptionSpec>;
  /** Positional arguments: how many at least, and whether more may follow. */
  positionals: { min: number; variadic: boolean };
}

/** Options as `west [command] --help` lists them: `  -c, --config   text   [string] [required]`. */
function optionsOf(help: string): Map<string, OptionSpec> {
  const options = new Map<string, OptionSpec>();
  const section = help.slice(help.indexOf('\nOptions:\n'));
  const entries = section.split(/\n(?= {2}-| {6}--)/).slice(1);
  for (const entry of entries) {
    const names = /^\s*((?:-{1,2}[\w-]+)(?:, -{1,2}[\w-]+)*)/.exec(entry)?.[1]?.split(', ') ?? [];
    const choices = /\[choices: ([^\]]*)\]/.exec(entry)?.[1]?.split(', ').map((c) => JSON.parse(c) as string);
    const value = choices !== undefined || /\[(string|number|array)\]/.test(entry);
    for (const n of names) options.set(n, { value, ...(choices ? { choices } : {}) });
  }
  return options;
}

async function cliSpec(): Promise<Map<string, CommandSpec>> {
  const main = await runCli(['--help']);
  assert.equal(main.code, 0, main.stderr);
  const spec = new Map<string, CommandSpec>();
  const commands = [...main.stdout.matchAll(/^ {2}west (\w+)((?: [<[][\w.]+[>\]])*)/gm)];
  assert.ok(commands.length >= 5, main.stdout);
  for (const [, name = '', args = ''] of commands) {
    const help = await runCli([name, '--help']);
    assert.equal(help.code, 0, help.stderr);
    spec.set(name, {
      options: optionsOf(help.stdout),
      positionals: { min: (args.match(/</g) ?? []).length, variadic: args.includes('..') },
    });
  }
  return spec;
}

/** Words of a shell command line: quotes removed, a `#` word starts a comment. */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
    if (m[3]?.startsWith('#')) break;
    out.push(m[1] ?? m[2] ?? m[3] ?? '');
  }
  return out;
}

interface CommandLine {
  where: string;
  /** The words after `west`. */
  args: string[];
  /** For a `$ west …` transcript: the lines printed after it. */
  output?: string;
}

/** `west …` commands in shell blocks (and `$ west …` in transcripts), one per pipeline segment. */
function commandLines(blocks: readonly Block[]): CommandLine[] {
  const found: CommandLine[] = [];
  for (const b of blocks) {
    if (!['sh', 'console', ''].includes(b.lang)) continue;
    const lines = b.text.replace(/\\\n\s*/g, '').split('\n');
    lines.forEach((raw, i) => {
      const transcript = raw.startsWith('$ ');
      if (b.lang === '' && !transcript) return;
      const line = transcript ? raw.slice(2) : raw;
      for (const segment of line.split(/&&|\|\||[|;]/)) {
        const w = words(segment.trim());
        while (w[0] === 'sudo' || /^\w+=/.test(w[0] ?? '')) w.shift();
        if (!/(^|\/)west$/.test(w[0] ?? '')) continue;
        const cmd: CommandLine = { where: `${b.where} (+${i + 1})`, args: w.slice(1) };
        if (transcript) {
          const rest = lines.slice(i + 1);
          const end = rest.findIndex((l) => l.startsWith('$ '));
          cmd.output = `${(end < 0 ? rest : rest.slice(0, end)).join('\n').replace(/\n+$/, '')}\n`;
        }
        found.push(cmd);
      }
    });
  }
  return found;
}

/** What is wrong with `west <args>` by the CLI's own help, or undefined. */
function misuse(args: readonly string[], spec: Map<string, CommandSpec>): string | undefined {
  // The command is the first bare word that is not an option's value (every command has the
  // default command's global options); without one it is the default command, run.
  let at = -1;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (!a.startsWith('-')) {
      at = i;
      break;
    }
    if (!a.includes('=') && spec.get('run')?.options.get(a)?.value === true) i++;
  }
  const name = at < 0 ? 'run' : args[at] ?? '';
  const command = spec.get(name);
  if (!command) return `"${name}" is not a west command`;
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (i === at) continue;
    if (!a.startsWith('-')) {
      positionals.push(a);
      continue;
    }
    const [flag = '', inline] = a.split(/=(.*)/s);
    const option = command.options.get(flag) ?? (flag.startsWith('--no-') ? command.options.get(`--${flag.slice(5)}`) : undefined);
    if (!option) return `west ${name} has no option ${flag}`;
    if (!option.value) continue;
    const value = inline ?? args[++i];
    if (value === undefined) return `${flag} needs a value`;
    if (option.choices && !option.choices.includes(value)) return `${flag} ${value}: not one of ${option.choices.join(', ')}`;
  }
  const { min, variadic } = command.positionals;
  if (positionals.length < min) return `west ${name} needs ${min} argument(s)`;
  if (!variadic && positionals.length > min) return `west ${name} takes no argument ${positionals.slice(min).join(' ')}`;
  return undefined;
}

/** A `west check` line's files, globs expanded, when every one is a file of this repository. */
function repoFiles(args: readonly string[]): string[] | undefined {
  const files: string[] = [];
  for (const a of args.slice(1)) {
    if (a.startsWith('-')) continue;
    const m = /^(.*)\/\*\.json$/.exec(a);
    if (m) {
      const dir = path.join(ROOT, m[1] ?? '');
      if (!existsSync(dir)) return undefined;
      files.push(...readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(m[1] ?? '', f)));
    } else if (existsSync(path.join(ROOT, a)) && statSync(path.join(ROOT, a)).isFile()) {
      files.push(a);
    } else {
      return undefined;
    }
  }
  return files.length > 0 ? files : undefined;
}

describe('every west command line of the docs', () => {
  const commands = commandLines(ALL);
  let spec = new Map<string, CommandSpec>();
  before(async () => {
    spec = await cliSpec();
  });
  after(async () => {
    await stopAll();
  });

  test('there are command lines to check, of every command', () => {
    assert.ok(commands.length >= 40, `${commands.length} command lines`);
    for (const c of ['check', 'state', 'origin']) assert.ok(commands.some((l) => l.args.includes(c)), `no doc runs west ${c}`);
  });

  test('each uses a command and options that west has, with values they accept', () => {
    const wrong = commands.flatMap((c) => {
      const why = misuse(c.args, spec);
      return why === undefined ? [] : [`${c.where}: west ${c.args.join(' ')}: ${why}`];
    });
    assert.deepEqual(wrong, []);
  });

  test('the checker itself finds a made-up flag, a bad value, a missing argument and an unknown command', () => {
    assert.match(misuse(['check', '--skip-secret', 'a.json'], spec) ?? '', /no option --skip-secret/);
    assert.match(misuse(['-c', 'x.json', '--log-format', 'yaml'], spec) ?? '', /not one of/);
    assert.match(misuse(['state'], spec) ?? '', /needs 1/);
    assert.match(misuse(['chek', 'a.json'], spec) ?? '', /not a west command/);
    assert.equal(misuse(['-c', 'config.json', '-d', '--debug', '2', '-O', 'f.log'], spec), undefined);
  });

  test('west check lines on files of this repository run: exit 0, and a transcript is what west prints', async () => {
    let ran = 0;
    for (const c of commands) {
      if (c.args[0] !== 'check') continue;
      const files = repoFiles(c.args);
      if (!files) continue;
      const flags = c.args.slice(1).filter((a) => a.startsWith('-'));
      const r = await runCli(['check', ...flags, ...files], 30_000);
      assert.equal(r.code, 0, `${c.where}: west ${c.args.join(' ')}\n${r.stdout}${r.stderr}`);
      if (c.output !== undefined) assert.equal(r.stdout, c.output, `${c.where}: the transcript differs from what west prints`);
      ran++;
    }
    assert.ok(ran >= 5, `${ran} west check lines ran`);
  });

  test('west --version, --help and completion as the docs write them exit 0', async () => {
    for (const c of commands.filter((l) => l.args.length === 1 && ['--version', '--help', 'completion'].includes(l.args[0] ?? ''))) {
      const r = await runCli(c.args);
      assert.equal(r.code, 0, `${c.where}: ${r.stderr}`);
    }
  });
});

// ---- jq filters over the log ----

/** Every `jq -… '<filter>'` in the docs, in code blocks or inline, with `\|` of tables undone. */
function jqFilters(): { where: string; flags: string; filter: string }[] {
  return docFiles().flatMap((file) => [...readFileSync(path.join(ROOT, file), 'utf8').matchAll(/\bjq((?: -[a-zA-Z]+)*) '((?:[^'\n])*)'/g)]
    .map((m) => ({ where: file, flags: (m[1] ?? '').trim(), filter: (m[2] ?? '').replace(/\\\|/g, '|') })));
}

describe('every jq filter of the docs reads the JSON log, skipping lines that are not JSON', () => {
  const haveJq = spawnSync('jq', ['--version']).status === 0;
  const filters = jqFilters();
  test('there are filters to check', () => {
    assert.ok(filters.length >= 3, `${filters.length} jq filters`);
  });
  for (const f of filters) {
    test(`${f.where}: jq ${f.flags} '${f.filter}'`, { skip: haveJq ? undefined : 'jq is not installed here' }, async () => {
      const log = [
        'Started west.service - west tunnel proxy.',
        JSON.stringify({ time: '2026-11-25T19:02:18.776Z', level: 'info', node: 'site', event: 'node.started' }),
        JSON.stringify({ time: '2026-11-25T19:02:18.776Z', level: 'info', node: 'site', event: 'access', id: '82f47f40-0106-4c00-a616-fb3ea6b12120', listener: 'http://127.0.0.1:9911', status: 502, error: 'origin_refused', at: 'site' }),
        '',
      ].join('\n');
      const child = execFile('jq', [...(f.flags ? [f.flags] : []), f.filter]);
      child.stdin?.end(log);
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.equal(code, 0, `${f.where}: jq ${f.flags} '${f.filter}' fails on a log with a line that is not JSON`);
    });
  }
});
