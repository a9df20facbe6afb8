/**
 * A small JSON scanner that reads the config text once before JSON.parse, because JSON.parse
 * cannot tell us two things operators need: where a syntax error is (line and column, in
 * words a person understands) and which keys are written twice (JSON.parse silently keeps
 * the last one, so a duplicated mapping or listener would just vanish).
 */

export type PathSegment = string | number;

export interface JsonSyntaxError {
  line: number;
  column: number;
  message: string;
}

export interface DuplicateKey {
  /** Path of the object holding the key twice. */
  at: PathSegment[];
  key: string;
}

export interface JsonScan {
  syntaxError?: JsonSyntaxError;
  duplicates: DuplicateKey[];
  /** Offset of every key's first occurrence, keyed by `pathKey(path)`; used to order messages. */
  offsets: Map<string, number>;
}

/** Map key for a path (segments are strings or indexes, so JSON keeps them apart). */
export function pathKey(path: readonly PathSegment[]): string {
  return JSON.stringify(path);
}

class ScanFailure {
  constructor(readonly offset: number, readonly message: string) {}
}

const MAX_DEPTH = 256;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const ESCAPE = /\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/y;

export function scanJson(text: string): JsonScan {
  const duplicates: DuplicateKey[] = [];
  const offsets = new Map<string, number>();
  const path: PathSegment[] = [];
  let i = 0;

  const fail = (message: string, at = i): never => {
    throw new ScanFailure(at, message); // eslint-disable-line @typescript-eslint/only-throw-error -- an internal signal, caught in this file: no stack to capture
  };
  const found = (): string => (i >= text.length ? 'the end of the file' : JSON.stringify(text[i]));

  const skipSpace = (): void => {
    for (;;) {
      const c = text[i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') i++;
      else if (c === '/' && (text[i + 1] === '/' || text[i + 1] === '*')) fail('comments are not allowed in JSON');
      else return;
    }
  };

  const readString = (): string => {
    const start = i++;
    for (;;) {
      const c = text[i] ?? fail('this string is never closed (missing ")', start);
      if (c === '"') break;
      if (c === '\\') {
        ESCAPE.lastIndex = i;
        if (!ESCAPE.test(text)) fail('invalid escape sequence in string');
        i = ESCAPE.lastIndex;
      } else if (c.charCodeAt(0) < 0x20) {
        fail('line breaks and control characters must be escaped inside a string (e.g. \\n)');
      } else {
        i++;
      }
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };

  const readObject = (depth: number): void => {
    i++;
    skipSpace();
    if (text[i] === '}') {
      i++;
      return;
    }
    const seen = new Set<string>();
    for (;;) {
      skipSpace();
      if (text[i] === "'") fail('property names must use double quotes ("), not single quotes');
      if (text[i] !== '"') fail(`expected a property name in double quotes, found ${found()}`);
      const keyAt = i;
      const key = readString();
      const keyPath = [...path, key];
      if (seen.has(key)) duplicates.push({ at: [...path], key });
      else offsets.set(pathKey(keyPath), keyAt);
      seen.add(key);
      skipSpace();
      if (text[i] !== ':') fail(`expected ":" after ${JSON.stringify(key)}, found ${found()}`);
      i++;
      path.push(key);
      readValue(depth + 1);
      path.pop();
      skipSpace();
      if (text[i] === '}') {
        i++;
        return;
      }
      if (text[i] !== ',') fail(`expected "," or "}" after the value of ${JSON.stringify(key)}, found ${found()}`);
      i++;
      skipSpace();
      if (text[i] === '}') fail('a comma before "}" is not allowed in JSON');
    }
  };

  const readArray = (depth: number): void => {
    i++;
    skipSpace();
    if (text[i] === ']') {
      i++;
      return;
    }
    for (let index = 0; ; index++) {
      path.push(index);
      readValue(depth + 1);
      path.pop();
      skipSpace();
      if (text[i] === ']') {
        i++;
        return;
      }
      if (text[i] !== ',') fail(`expected "," or "]" in a list, found ${found()}`);
      i++;
      skipSpace();
      if (text[i] === ']') fail('a comma before "]" is not allowed in JSON');
    }
  };

  const readValue = (depth: number): void => {
    skipSpace();
    if (depth > MAX_DEPTH) fail('the JSON is nested too deeply');
    const c = text[i];
    if (c === '{') { readObject(depth); return; }
    if (c === '[') { readArray(depth); return; }
    if (c === '"') {
      readString();
      return;
    }
    if (c === "'") fail('strings must use double quotes ("), not single quotes');
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length;
        return;
      }
    }
    NUMBER.lastIndex = i;
    if (NUMBER.test(text)) {
      i = NUMBER.lastIndex;
      return;
    }
    fail(`expected a value, found ${found()}`);
  };

  try {
    readValue(0);
    skipSpace();
    if (i < text.length) fail(`unexpected ${found()} after the end of the JSON value`);
  } catch (err) {
    if (!(err instanceof ScanFailure)) throw err;
    return { syntaxError: { ...lineAndColumn(text, err.offset), message: err.message }, duplicates, offsets };
  }
  return { duplicates, offsets };
}

/** 1-based line and column of an offset; a tab counts as one column, as in most editors' status bars. */
function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let k = 0; k < offset && k < text.length; k++) {
    if (text[k] === '\n') {
      line++;
      lineStart = k + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}
