import { AttestationError, type AttestationErrorCode } from '../errors.js';

/**
 * A small, strict DER reader (definite lengths, single-byte tags) for the parts
 * of X.509 certificates and CRLs the DCAP verifier needs. node:crypto exposes
 * neither certificate extensions nor CRLs, so they are walked here.
 *
 * Every read is bounds-checked; any violation throws AttestationError with the
 * code the caller chose (EVIDENCE_MALFORMED for bytes inside the quote,
 * INVALID_ARGUMENT for caller-supplied collateral).
 */

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** One TLV inside `buf`: tag byte, content [start, end). */
export interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly offset: number;
  /** Content start. */
  readonly start: number;
  /** Content end (exclusive) = end of the whole TLV. */
  readonly end: number;
}

export class DerReader {
  constructor(
    readonly buf: Uint8Array,
    readonly code: AttestationErrorCode,
    readonly what: string,
  ) {}

  fail(message: string): AttestationError {
    return new AttestationError(this.code, `${this.what}: ${message}`);
  }

  /** Reads the TLV at `pos`, which must end at or before `limit`. */
  read(pos: number, limit: number = this.buf.length): Tlv {
    const b = this.buf;
    if (limit > b.length || pos + 2 > limit) throw this.fail('truncated DER');
    const tag = b[pos]!;
    if ((tag & 0x1f) === 0x1f) throw this.fail('multi-byte DER tags are not supported');
    const first = b[pos + 1]!;
    let len: number;
    let start: number;
    if (first < 0x80) {
      len = first;
      start = pos + 2;
    } else {
      const n = first & 0x7f;
      if (n === 0) throw this.fail('indefinite DER length');
      if (n > 4) throw this.fail('DER length too large');
      if (pos + 2 + n > limit) throw this.fail('truncated DER length');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + b[pos + 2 + i]!;
      if (len < 0x80 || b[pos + 2] === 0) throw this.fail('non-minimal DER length');
      start = pos + 2 + n;
    }
    const end = start + len;
    if (end > limit) throw this.fail('DER value runs past its container');
    return { tag, offset: pos, start, end };
  }

  /** Reads the single TLV that must fill [pos, limit) exactly. */
  readWhole(pos: number, limit: number, tag?: number): Tlv {
    const tlv = this.read(pos, limit);
    if (tlv.end !== limit) throw this.fail('trailing bytes after DER value');
    if (tag !== undefined) this.expectTag(tlv, tag);
    return tlv;
  }

  expectTag(tlv: Tlv, tag: number): Tlv {
    if (tlv.tag !== tag) throw this.fail(`expected DER tag 0x${tag.toString(16)}, found 0x${tlv.tag.toString(16)}`);
    return tlv;
  }

  /** The TLVs directly inside a constructed value. */
  children(tlv: Tlv): Tlv[] {
    if ((tlv.tag & 0x20) === 0) throw this.fail('expected a constructed DER value');
    const out: Tlv[] = [];
    let pos = tlv.start;
    while (pos < tlv.end) {
      const child = this.read(pos, tlv.end);
      out.push(child);
      pos = child.end;
    }
    return out;
  }

  bytes(tlv: Tlv): Uint8Array {
    return this.buf.subarray(tlv.start, tlv.end);
  }

  /** The whole encoding (tag, length, content). */
  raw(tlv: Tlv): Uint8Array {
    return this.buf.subarray(tlv.offset, tlv.end);
  }

  oid(tlv: Tlv): string {
    this.expectTag(tlv, TAG.OID);
    const c = this.bytes(tlv);
    if (c.length === 0 || c.length > 64) throw this.fail('bad OID length');
    const arcs: number[] = [];
    let value = 0;
    for (let i = 0; i < c.length; i++) {
      const byte = c[i]!;
      if (value === 0 && byte === 0x80) throw this.fail('non-minimal OID arc');
      value = value * 128 + (byte & 0x7f);
      if (value > Number.MAX_SAFE_INTEGER / 256) throw this.fail('OID arc too large');
      if ((byte & 0x80) === 0) {
        arcs.push(value);
        value = 0;
      } else if (i === c.length - 1) {
        throw this.fail('truncated OID arc');
      }
    }
    const first = arcs[0]!;
    const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
    return [...head, ...arcs.slice(1)].join('.');
  }

  /** Non-negative INTEGER / ENUMERATED as a number (small values only). */
  smallUint(tlv: Tlv, tag: number = TAG.INTEGER): number {
    this.expectTag(tlv, tag);
    const c = this.bytes(tlv);
    if (c.length === 0 || c.length > 5) throw this.fail('integer length out of range');
    if ((c[0]! & 0x80) !== 0) throw this.fail('negative integer');
    if (c.length > 1 && c[0] === 0 && (c[1]! & 0x80) === 0) throw this.fail('non-minimal integer');
    let v = 0;
    for (const byte of c) v = v * 256 + byte;
    return v;
  }

  /** INTEGER magnitude as lowercase hex without leading zero bytes (serial numbers). */
  integerHex(tlv: Tlv): string {
    this.expectTag(tlv, TAG.INTEGER);
    const c = this.bytes(tlv);
    if (c.length === 0 || c.length > 64) throw this.fail('integer length out of range');
    let i = 0;
    while (i < c.length - 1 && c[i] === 0) i++;
    return Buffer.from(c.subarray(i)).toString('hex');
  }

  boolean(tlv: Tlv): boolean {
    this.expectTag(tlv, TAG.BOOLEAN);
    const c = this.bytes(tlv);
    if (c.length !== 1) throw this.fail('bad BOOLEAN');
    return c[0] !== 0;
  }

  /** BIT STRING content without the unused-bits byte (which must be 0). */
  bitStringBytes(tlv: Tlv): Uint8Array {
    this.expectTag(tlv, TAG.BIT_STRING);
    const c = this.bytes(tlv);
    if (c.length < 1 || c[0] !== 0) throw this.fail('BIT STRING with unused bits');
    return c.subarray(1);
  }

  /** UTCTime or GeneralizedTime (UTC, whole seconds, 'Z'). */
  time(tlv: Tlv): Date {
    const content = this.bytes(tlv);
    if (content.length > 32) throw this.fail('time value too long');
    const text = String.fromCharCode(...content);
    let m: RegExpExecArray | null;
    let year: number;
    if (tlv.tag === TAG.UTC_TIME) {
      m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
      if (m === null) throw this.fail('bad UTCTime');
      const yy = Number(m[1]);
      year = yy >= 50 ? 1900 + yy : 2000 + yy;
    } else if (tlv.tag === TAG.GENERALIZED_TIME) {
      m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
      if (m === null) throw this.fail('bad GeneralizedTime');
      year = Number(m[1]);
    } else {
      throw this.fail('expected a time value');
    }
    const [mo, d, h, mi, s] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
    const ms = Date.UTC(year, mo - 1, d, h, mi, s);
    const date = new Date(ms);
    if (
      Number.isNaN(ms) ||
      date.getUTCMonth() !== mo - 1 ||
      date.getUTCDate() !== d ||
      h > 23 ||
      mi > 59 ||
      s > 59
    ) {
      throw this.fail('invalid date');
    }
    return date;
  }

  isTime(tlv: Tlv | undefined): boolean {
    return tlv !== undefined && (tlv.tag === TAG.UTC_TIME || tlv.tag === TAG.GENERALIZED_TIME);
  }

  /** Text of a directory string (UTF8String, PrintableString, IA5String). */
  text(tlv: Tlv): string {
    if (tlv.tag !== TAG.UTF8_STRING && tlv.tag !== TAG.PRINTABLE_STRING && tlv.tag !== TAG.IA5_STRING) {
      throw this.fail('expected a string value');
    }
    return Buffer.from(this.bytes(tlv)).toString('utf8');
  }
}
