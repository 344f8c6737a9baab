/**
 * The admission protocol's messages. A challenge is
 * `{"challenge": "<1-128 characters>", "genesis": "<the challenger's genesis hash>"}`.
 * The answer is either a claim (see AdmissionClaim; evaluateAdmission checks it)
 * or a typed refusal to answer: `{"error": {"code", "message", "retryAfterMs"?}}`.
 */

/**
 * Why a node declines to answer a challenge: the challenge is malformed, the
 * challenger asked too often (per-peer token bucket), or too much admission work
 * is queued. A refusal to answer is not a refused admission: the challenger
 * tries again later (after `retryAfterMs` when given). GENESIS_MISMATCH: the
 * challenger runs another genesis (a misconfigured node, or another chain); the
 * challenger records it as a refusal with that reason. DECLINED stands for a
 * code this version does not know.
 */
export type AdmissionErrorCode = 'BAD_CHALLENGE' | 'RATE_LIMITED' | 'BUSY' | 'GENESIS_MISMATCH' | 'DECLINED';

export class AdmissionError extends Error {
  constructor(
    readonly code: AdmissionErrorCode,
    message: string,
    /** When the challenger may try again. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'AdmissionError';
  }
}

/** Longest challenge accepted (the challenger's random freshness value). */
export const MAX_CHALLENGE_LENGTH = 128;
/** Largest challenge message read; anything longer is cut off by the transport. */
export const MAX_CHALLENGE_BYTES = 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const KNOWN_CODES: ReadonlySet<string> = new Set<AdmissionErrorCode>(['BAD_CHALLENGE', 'RATE_LIMITED', 'BUSY', 'GENESIS_MISMATCH']);
const GENESIS_HASH_RE = /^[0-9a-f]{64}$/;

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes)) as unknown;
  } catch {
    return undefined;
  }
}

export function encodeChallenge(challenge: string, genesisHash: string): Uint8Array {
  return encoder.encode(JSON.stringify({ challenge, genesis: genesisHash }));
}

/** The challenge and the challenger's genesis hash, or undefined when the message is not a well-formed challenge. */
export function parseChallenge(bytes: Uint8Array): { challenge: string; genesis: string } | undefined {
  const value = parseJson(bytes) as { challenge?: unknown; genesis?: unknown } | undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  const { challenge, genesis } = value;
  if (typeof challenge !== 'string' || challenge.length === 0 || challenge.length > MAX_CHALLENGE_LENGTH) return undefined;
  if (typeof genesis !== 'string' || !GENESIS_HASH_RE.test(genesis)) return undefined;
  return { challenge, genesis };
}

export function encodeAnswer(answer: object): Uint8Array {
  return encoder.encode(JSON.stringify(answer));
}

export function encodeAnswerError(err: AdmissionError): Uint8Array {
  const error = { code: err.code, message: err.message, ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}) };
  return encodeAnswer({ error });
}

/**
 * Splits an answer into a declined challenge (a typed error) and anything
 * else, which is a claim for evaluateAdmission to judge (malformed included).
 */
export function parseAnswer(bytes: Uint8Array): { claim: unknown } | { error: AdmissionError } {
  const value = parseJson(bytes);
  const error = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as { error?: unknown }).error : undefined;
  if (typeof error !== 'object' || error === null || typeof (error as { code?: unknown }).code !== 'string') return { claim: value };
  const { code, message, retryAfterMs } = error as { code: string; message?: unknown; retryAfterMs?: unknown };
  const retry = typeof retryAfterMs === 'number' && Number.isFinite(retryAfterMs) && retryAfterMs >= 0 ? retryAfterMs : undefined;
  const text = typeof message === 'string' ? message.slice(0, 200) : '';
  return { error: new AdmissionError(KNOWN_CODES.has(code) ? (code as AdmissionErrorCode) : 'DECLINED', `${code.slice(0, 40)}: ${text}`, retry) };
}
