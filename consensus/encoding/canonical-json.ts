import { ChainError } from '../errors.js';

/**
 * The one canonical encoding for everything Cloister hashes or signs.
 *
 * It is JSON with these rules (a strict subset of RFC 8785, JCS):
 * - object keys sorted by UTF-16 code units (JavaScript's default sort), no duplicates;
 * - no whitespace;
 * - numbers are integers in the IEEE-754 safe range (|n| <= 2^53-1), written in
 *   decimal without exponent; no floats, NaN or infinities (they do not round-trip
 *   identically in every language);
 * - strings as JSON.stringify writes them (minimal escapes);
 * - no `undefined`, functions, symbols, bigints or non-plain objects;
 * - byte strings are lowercase hex text.
 * The bytes are the UTF-8 encoding of that text.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const MAX_DEPTH = 64;

export function canonicalize(value: unknown): string {
  return encode(value, 0);
}

export function canonicalBytes(value: unknown): Uint8Array {
  return Buffer.from(canonicalize(value), 'utf8');
}

function encode(value: unknown, depth: number): string {
  if (depth > MAX_DEPTH) throw new ChainError('ENCODING_INVALID', `value nested deeper than ${MAX_DEPTH}`);
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) {
        throw new ChainError('ENCODING_INVALID', `number ${String(value)} is not a safe integer`);
      }
      return Object.is(value, -0) ? '0' : String(value);
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          out += encode(value[i], depth + 1);
        }
        return out + ']';
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        throw new ChainError('ENCODING_INVALID', 'only plain objects can be encoded');
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      let out = '{';
      let first = true;
      for (const key of keys) {
        const item = record[key];
        if (item === undefined) throw new ChainError('ENCODING_INVALID', `key "${key}" is undefined`);
        if (!first) out += ',';
        first = false;
        out += JSON.stringify(key) + ':' + encode(item, depth + 1);
      }
      return out + '}';
    }
    default:
      throw new ChainError('ENCODING_INVALID', `cannot encode a value of type ${typeof value}`);
  }
}

/** Checks that a value decoded from untrusted JSON is encodable (safe integers only, depth). */
export function isCanonicalJsonValue(value: unknown): value is JsonValue {
  try {
    encode(value, 0);
    return true;
  } catch {
    return false;
  }
}
