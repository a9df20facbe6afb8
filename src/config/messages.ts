/**
 * Turns ajv's errors into one readable finding per problem: the JSON path as an operator
 * would write it (`proxy["http://:9911"]["/px"].ou`) and the `message` annotation of the
 * schema node, followed by the offending value.
 */
import { editDistance } from '../words.js';
import type { ErrorObject } from 'ajv';
import { isRecord } from '../json.js';
import type { PathSegment } from './json-text.js';
import { MESSAGE_KEYWORD } from './schema.js';

/** A problem at a path; formatted into a ConfigIssue once all checks have run. */
export interface Finding {
  at: PathSegment[];
  message: string;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
// Their keys are addresses chosen by the operator, so they always read as ["key"], never .key.
const MAP_SECTIONS = new Set(['wstc', 'proxy']);

/** `["proxy", "http://:9911", "/px", "ca", 0]` → `proxy["http://:9911"]["/px"].ca[0]`. */
export function formatPath(path: readonly PathSegment[]): string {
  if (path.length === 0) return '(top level)';
  let out = '';
  path.forEach((seg, depth) => {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (IDENTIFIER.test(seg) && !(depth === 1 && MAP_SECTIONS.has(String(path[0])))) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  });
  return out;
}

/** A value as it should appear after "got": short, JSON-quoted, never a whole object. */
export function showValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value) ?? String(value); // eslint-disable-line @typescript-eslint/no-unnecessary-condition, @typescript-eslint/no-base-to-string -- JSON.stringify returns undefined for undefined, functions and symbols, whatever its type says
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

// Keywords that judge the value itself, where showing the value helps.
const VALUE_KEYWORDS = new Set([
  'type', 'format', 'enum', 'const', 'pattern', 'minLength', 'maxLength',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf',
]);

// How patternProperties keys read in "expected ..." lists.
const PATTERN_NAMES: Record<string, string> = { '^/': 'a path starting with "/"' };

/** ajv's instancePath is a JSON pointer; walking the data tells list indexes from keys. */
function pointerToPath(pointer: string, root: unknown): PathSegment[] {
  if (pointer === '') return [];
  const path: PathSegment[] = [];
  let node = root;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) {
      path.push(Number(seg));
      node = node[Number(seg)];
    } else {
      path.push(seg);
      node = isRecord(node) ? node[seg] : undefined;
    }
  }
  return path;
}

function annotation(error: ErrorObject, keyword = error.keyword): string | undefined {
  const message: unknown = error.parentSchema?.[MESSAGE_KEYWORD];
  if (typeof message === 'string') return message;
  if (isRecord(message)) {
    const specific = message[keyword];
    return typeof specific === 'string' ? specific : undefined;
  }
  return undefined;
}

function knownKeys(schema: Record<string, unknown> | undefined): string {
  const names = [
    ...Object.keys(isRecord(schema?.properties) ? schema.properties : {}).map((k) => JSON.stringify(k)),
    ...Object.keys(isRecord(schema?.patternProperties) ? schema.patternProperties : {}).map(
      (p) => PATTERN_NAMES[p] ?? `a key matching /${p}/`,
    ),
  ];
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}

/** Distance ≤ 2 between short words catches typical typos like "nn" for "nm". */
function closeTo(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (Math.abs(x.length - y.length) > 2) return false;
  return editDistance(x, y) <= Math.min(2, Math.floor(y.length / 2));
}

function unknownKey(error: ErrorObject, key: string): string {
  const schema = error.parentSchema;
  const declared = Object.keys(isRecord(schema?.properties) ? schema.properties : {});
  const guess = declared.find((k) => closeTo(key, k));
  // A likely typo gets the one suggestion; otherwise list what the section accepts.
  if (guess) return `is not a known key; did you mean ${JSON.stringify(guess)}?`;
  return `is not a known key (expected ${knownKeys(schema)})`;
}

function translate(error: ErrorObject, root: unknown): Finding {
  const at = pointerToPath(error.instancePath, root);
  const params: Record<string, unknown> = error.params;
  switch (error.keyword) {
    case 'required':
      return { at: [...at, String(params.missingProperty)], message: 'is required' };
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      return { at: [...at, key], message: unknownKey(error, key) };
    }
    case 'oneOf': {
      const passing = params.passingSchemas;
      const base = annotation(error) ?? 'must match exactly one of the allowed forms';
      const detail = passing === null ? ' (found none)'
        : Array.isArray(passing) ? (passing.length === 2 ? ' (found both)' : ' (found more than one)') : '';
      return { at, message: base + detail };
    }
  }
  // A failing propertyNames subschema reports at the object, naming the key separately.
  const key = error.propertyName;
  const where = key === undefined ? at : [...at, key];
  const message = annotation(error) ?? (error.message ?? 'is invalid');
  const shown = key ?? error.data;
  return { at: where, message: VALUE_KEYWORDS.has(error.keyword) ? `${message}, got ${showValue(shown)}` : message };
}

/**
 * One finding per problem. ajv reports a failed oneOf/anyOf together with every branch's
 * failure, a propertyNames failure twice, and a wrong type beside the checks that then could
 * not apply; only the error that explains the problem is kept.
 */
export function findingsFromAjv(errors: readonly ErrorObject[], root: unknown): Finding[] {
  const branches = errors
    .filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf')
    .map((e) => `${e.schemaPath}/`);
  const inBranch = (e: ErrorObject): boolean => branches.some((prefix) => e.schemaPath.startsWith(prefix));
  // A branch's wrong type is the branch's, not the value's: the oneOf/anyOf that failed stays.
  const wrongType = new Set(errors.filter((e) => e.keyword === 'type' && !inBranch(e)).map((e) => e.instancePath));
  const kept = errors.filter((e) => {
    if (e.keyword === 'propertyNames') return false;
    if (inBranch(e)) return false;
    if (e.keyword !== 'type' && e.propertyName === undefined && wrongType.has(e.instancePath)) return false;
    return true;
  });
  const seen = new Set<string>();
  const findings: Finding[] = [];
  for (const error of kept) {
    const finding = translate(error, root);
    const id = JSON.stringify([finding.at, finding.message]);
    if (seen.has(id)) continue;
    seen.add(id);
    findings.push(finding);
  }
  return findings;
}
