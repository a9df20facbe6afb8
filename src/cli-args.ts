/**
 * What yargs does not do for `west`'s command line: a typo of a command (which the default
 * `run` command would otherwise take as a stray argument and answer with "Missing required
 * argument: config"), and the original's `--debug N` beside its counted `-d`.
 */
import { editDistance } from './words.js';

/** Options that take a value, so the word after them is not a command. */
const TAKES_VALUE = new Set(['-c', '--config', '--log-level', '--log-format', '--debug', '-O', '--output', '--input', '--workers']);

/** The first word of `args` that is not an option or an option's value: a command, if any. */
export function commandWord(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--') return undefined;
    if (a.startsWith('-')) {
      if (TAKES_VALUE.has(a)) i++;
      continue;
    }
    return a;
  }
  return undefined;
}

/** The command nearest to `word` by edit distance, when it is near enough to be a typo. */
export function nearestCommand(word: string, commands: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of commands) {
    const d = editDistance(word.toLowerCase(), c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 2)) ? best : undefined;
}

/**
 * The original's `--debug N` takes a level; west's `-d` is counted. A bare `--debug` (no number
 * after it) counts as 1, so `--debug` keeps working as it did before it took a value.
 */
export function withDebugLevel(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (a === '--debug' && !/^\d+$/.test(args[i + 1] ?? '')) out.push('--debug=1');
    else out.push(a);
  }
  return out;
}
