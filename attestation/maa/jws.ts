import { AttestationError, type AttestationErrorCode } from '../errors.js';

/**
 * Strict JWS compact serialization parsing, shared by the Azure Attestation
 * verifier and Cloister attestation tokens.
 *
 * Strictness matters for the "any changed byte fails" guarantee: base64url
 * segments must be the canonical encoding of their bytes. A lenient decoder
 * would accept a signature whose last character differs only in the unused
 * low bits (RSA-2048: 342 characters carry 2052 bits for 2048), so two
 * different token texts would verify as the same signature.
 */

export interface CompactJws {
  /** The compact serialization exactly as verified (ASCII). */
  readonly text: string;
  readonly header: Readonly<Record<string, unknown>>;
  readonly payload: Readonly<Record<string, unknown>>;
  /** The raw payload bytes (what the signature covers, after base64url decoding). */
  readonly payloadBytes: Uint8Array;
  /** ASCII(BASE64URL(header) || '.' || BASE64URL(payload)). */
  readonly signingInput: Uint8Array;
  readonly signature: Uint8Array;
}

const B64URL_RE = /^[A-Za-z0-9_-]*$/;

/** Canonical unpadded base64url to bytes; undefined for any other text. */
export function fromBase64UrlStrict(text: string): Uint8Array | undefined {
  if (!B64URL_RE.test(text) || text.length % 4 === 1) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.toString('base64url') !== text) return undefined; // non-zero unused bits
  return new Uint8Array(bytes);
}

export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Strict UTF-8 decoding; undefined for invalid sequences. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function jsonObject(bytes: Uint8Array, what: string, code: AttestationErrorCode): Record<string, unknown> {
  const text = decodeUtf8(bytes);
  if (text === undefined) throw new AttestationError(code, `${what} is not UTF-8`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new AttestationError(code, `${what} is not JSON`);
  }
  if (!isPlainObject(value)) throw new AttestationError(code, `${what} is not a JSON object`);
  return value;
}

/**
 * Parses `header.payload.signature` (all three segments canonical base64url,
 * header and payload JSON objects). Throws AttestationError(`code`, default
 * EVIDENCE_MALFORMED). Verifies nothing.
 */
export function parseCompactJws(text: string, code: AttestationErrorCode = 'EVIDENCE_MALFORMED'): CompactJws {
  const parts = text.split('.');
  if (parts.length !== 3) throw new AttestationError(code, `a compact JWS has 3 dot-separated parts, not ${parts.length}`);
  const [h, p, s] = parts as [string, string, string];
  const headerBytes = fromBase64UrlStrict(h);
  const payloadBytes = fromBase64UrlStrict(p);
  const signature = fromBase64UrlStrict(s);
  if (headerBytes === undefined || headerBytes.length === 0) throw new AttestationError(code, 'JWS header is not canonical base64url');
  if (payloadBytes === undefined) throw new AttestationError(code, 'JWS payload is not canonical base64url');
  if (signature === undefined || signature.length === 0) throw new AttestationError(code, 'JWS signature is not canonical base64url');
  const header = jsonObject(headerBytes, 'JWS header', code);
  const payload = jsonObject(payloadBytes, 'JWS payload', code);
  return {
    text,
    header,
    payload,
    payloadBytes,
    signingInput: new Uint8Array(Buffer.from(`${h}.${p}`, 'ascii')),
    signature,
  };
}
