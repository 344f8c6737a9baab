import { randomUUID } from 'node:crypto';

/**
 * JSON numbers the node would read as another value than the client wrote:
 * `1e309` (read as Infinity, sent on as null), `9007199254740993` (read as
 * ...992), `1.0000000000000001` (read as 1), `1e-400` (read as 0), `-0` (written
 * back as 0). JSON.parse changes them silently; here they are found in the
 * text and marked, so the dispatcher refuses them instead.
 *
 * A literal "reads exactly" when the number JSON.parse makes of it, written
 * back (shortest round trip, as JSON.stringify does), is the same decimal value
 * with the same sign. Such a literal survives every hop; any other is marked
 * with a symbol whose description says what it would have become. Symbols
 * cannot come out of JSON, so a marker is never mistaken for a client's value.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const LOWER_E = 0x65;
const UPPER_E = 0x45;

/** Parses like JSON.parse (and throws its SyntaxError), with every number that does not read exactly replaced by a marker. */
export function parseJsonExact(text: string): unknown {
  const value = JSON.parse(text) as unknown;
  const spans = inexactLiterals(text);
  return spans.length === 0 ? value : parseMarked(text, spans);
}

/** True for the markers parseJsonExact puts where a number would not read exactly. */
export function isInexactNumber(value: unknown): value is symbol {
  return typeof value === 'symbol';
}

/** What a marker stands for, e.g. "1e309 would be read as Infinity". */
export function describeInexact(marker: symbol): string {
  return marker.description ?? 'a number that does not read exactly';
}

/**
 * The first number in a param value that the API cannot carry exactly: a
 * marker, or a number that is not a safe integer (Cloister's API carries
 * numbers only as safe integers, as the canonical encoding does). Its place is
 * a JSON pointer into the value. Assumes nesting was already bounded.
 */
export function findUncarriableNumber(value: unknown): { path: string; reason: string } | undefined {
  if (isInexactNumber(value)) return { path: '', reason: describeInexact(value) };
  if (typeof value === 'number') {
    const reason = numberProblem(value);
    return reason === undefined ? undefined : { path: '', reason };
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const keys = Array.isArray(value) ? value.keys() : Object.keys(value);
  for (const key of keys) {
    const found = findUncarriableNumber((value as Record<string | number, unknown>)[key]);
    if (found) return { path: `/${pointerToken(String(key))}${found.path}`, reason: found.reason };
  }
  return undefined;
}

function numberProblem(value: number): string | undefined {
  if (Object.is(value, -0)) return '-0 is carried as 0; send 0';
  if (!Number.isInteger(value)) return `${value} is not an integer`;
  if (!Number.isSafeInteger(value)) return `${value} is beyond the safe integer range (±${Number.MAX_SAFE_INTEGER})`;
  return undefined;
}

function pointerToken(key: string): string {
  const escaped = key.replace(/~/g, '~0').replace(/\//g, '~1');
  return escaped.length > 64 ? `${escaped.slice(0, 64)}…` : escaped;
}

/**
 * Start and end of every number literal in a valid JSON text that does not
 * read exactly. Strings are skipped with indexOf, so a body that is mostly
 * strings (hex keys and signatures) costs little.
 */
function inexactLiterals(text: string): [number, number][] {
  const spans: [number, number][] = [];
  const length = text.length;
  let i = 0;
  while (i < length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i);
    } else if (c === MINUS || (c >= DIGIT_0 && c <= DIGIT_9)) {
      let end = i + 1;
      while (end < length && isNumberChar(text.charCodeAt(end))) end++;
      if (!literalReadsExactly(text, i, end)) spans.push([i, end]);
      i = end;
    } else {
      i++;
    }
  }
  return spans;
}

/** The index after the quote that closes the string opened at `open` (the text is valid JSON). */
function stringEnd(text: string, open: number): number {
  let from = open + 1;
  for (;;) {
    const close = text.indexOf('"', from);
    if (close < 0) return text.length;
    let backslashes = 0;
    for (let j = close - 1; text.charCodeAt(j) === BACKSLASH; j--) backslashes++;
    if (backslashes % 2 === 0) return close + 1;
    from = close + 1;
  }
}

function isNumberChar(c: number): boolean {
  return (c >= DIGIT_0 && c <= DIGIT_9) || c === DOT || c === LOWER_E || c === UPPER_E || c === MINUS || c === PLUS;
}

function literalReadsExactly(text: string, start: number, end: number): boolean {
  // Almost every number is a plain integer of at most 15 digits: below 2^53, so exact (except -0).
  const digits = text.charCodeAt(start) === MINUS ? start + 1 : start;
  if (end - digits <= 15) {
    let plain = true;
    for (let k = digits; k < end && plain; k++) {
      const c = text.charCodeAt(k);
      plain = c >= DIGIT_0 && c <= DIGIT_9;
    }
    if (plain) return !(digits > start && end - digits === 1 && text.charCodeAt(digits) === DIGIT_0);
  }
  return readsExactly(text.slice(start, end));
}

/** True when a JSON number literal, parsed and written back, denotes the same value with the same sign. */
export function readsExactly(literal: string): boolean {
  const value = Number(literal);
  if (!Number.isFinite(value)) return false;
  const written = decimal(literal);
  const read = decimal(String(value));
  return written.negative === read.negative && written.digits === read.digits && written.exponent === read.exponent;
}

/** A decimal literal as sign, significant digits (no leading or trailing zeros) and exponent; zero has no digits. */
function decimal(literal: string): { negative: boolean; digits: string; exponent: number } {
  const negative = literal.startsWith('-');
  const body = negative ? literal.slice(1) : literal;
  const e = body.search(/[eE]/);
  const mantissa = e < 0 ? body : body.slice(0, e);
  let exponent = e < 0 ? 0 : Number(body.slice(e + 1));
  const dot = mantissa.indexOf('.');
  if (dot >= 0) exponent -= mantissa.length - dot - 1;
  const all = mantissa.replace('.', '').replace(/^0+/, '');
  const digits = all.replace(/0+$/, '');
  if (digits === '') return { negative, digits, exponent: 0 };
  return { negative, digits, exponent: exponent + all.length - digits.length };
}

/** Parses the text again with each inexact literal replaced by a string tag that the reviver turns into a marker. */
function parseMarked(text: string, spans: [number, number][]): unknown {
  // A random tag: no client can write a string that the reviver would take for one.
  const tag = `\u0000inexact-${randomUUID()}:`;
  const markers: symbol[] = [];
  const pieces: string[] = [];
  let last = 0;
  for (const [start, end] of spans) {
    const literal = text.slice(start, end);
    const shown = literal.length > 40 ? `${literal.slice(0, 40)}…` : literal;
    markers.push(Symbol(`${shown} would be read as ${String(Number(literal))}`));
    pieces.push(text.slice(last, start), JSON.stringify(`${tag}${markers.length - 1}`));
    last = end;
  }
  pieces.push(text.slice(last));
  return JSON.parse(pieces.join(''), (_key, value: unknown) =>
    typeof value === 'string' && value.startsWith(tag) ? markers[Number(value.slice(tag.length))] : value,
  ) as unknown;
}
