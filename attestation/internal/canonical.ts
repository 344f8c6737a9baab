import { AttestationError, type AttestationErrorCode } from '../errors.js';

/**
 * Canonical JSON, local copy of the project's rules (attestation/ is a leaf and
 * cannot import consensus/encoding): object keys sorted by UTF-16 code units, no
 * duplicates, no whitespace, only safe integers, strings as JSON.stringify writes
 * them, no undefined. UTF-8 of the text is what gets hashed.
 * A value encoded here and by consensus/encoding/canonical-json gives the same text.
 */
export function canonicalJson(value: unknown, errorCode: AttestationErrorCode = 'INVALID_ARGUMENT'): string {
  return encode(value, 0, errorCode);
}

const MAX_DEPTH = 32;

function encode(value: unknown, depth: number, code: AttestationErrorCode): string {
  if (depth > MAX_DEPTH) throw new AttestationError(code, `value nested deeper than ${MAX_DEPTH}`);
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) throw new AttestationError(code, `number ${String(value)} is not a safe integer`);
      return Object.is(value, -0) ? '0' : String(value);
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) return '[' + value.map((item) => encode(item, depth + 1, code)).join(',') + ']';
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) throw new AttestationError(code, 'only plain objects can be encoded');
      const record = value as Record<string, unknown>;
      const parts: string[] = [];
      for (const key of Object.keys(record).sort()) {
        const item = record[key];
        if (item === undefined) throw new AttestationError(code, `key "${key}" is undefined`);
        parts.push(JSON.stringify(key) + ':' + encode(item, depth + 1, code));
      }
      return '{' + parts.join(',') + '}';
    }
    default:
      throw new AttestationError(code, `cannot encode a value of type ${typeof value}`);
  }
}
