import { AttestationError, guarded } from './errors.js';
import { isBytes } from './internal/bytes.js';
import { canonicalJson } from './internal/canonical.js';

/**
 * Evidence envelope: a small canonical JSON object, `{"platform":"<name>", ...}`,
 * whose other members are strings (base64 for bytes). It carries evidence that
 * needs more than one blob or needs a label (virtual evidence: the report and
 * the virtual root's public key).
 *
 * Strictness: UTF-8; at most MAX_ENVELOPE_BYTES; one JSON object; string values
 * only; and the bytes must be exactly the canonical encoding (sorted keys, no
 * whitespace, no duplicate keys). So one piece of evidence has one byte string
 * and one evidenceDigest.
 *
 * Detection: an envelope starts with '{' (0x7B); no raw hardware format does
 * (an SEV-SNP report starts with its u32 version 2/3/5, an SGX quote with u16 3..5,
 * an Azure HCL report with "HCLA", a JWT with "eyJ").
 */

export const MAX_ENVELOPE_BYTES = 65_536;

export interface EvidenceEnvelope {
  readonly platform: string;
  /** All members, including `platform`. */
  readonly fields: Readonly<Record<string, string>>;
}

export function looksLikeEnvelope(evidence: Uint8Array): boolean {
  return isBytes(evidence) && evidence.length > 0 && evidence[0] === 0x7b;
}

function malformed(message: string): AttestationError {
  return new AttestationError('EVIDENCE_MALFORMED', `evidence envelope: ${message}`);
}

export function parseEnvelope(evidence: Uint8Array): EvidenceEnvelope {
  return guarded('parseEnvelope', () => {
    if (!isBytes(evidence)) throw malformed('evidence is not a byte array');
    if (evidence.length > MAX_ENVELOPE_BYTES) throw malformed(`larger than ${MAX_ENVELOPE_BYTES} bytes`);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(evidence);
    } catch {
      throw malformed('not UTF-8');
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw malformed('not JSON');
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw malformed('not a JSON object');
    const fields: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [key, member] of Object.entries(value as Record<string, unknown>)) {
      if (typeof member !== 'string') throw malformed(`member "${key}" is not a string`);
      fields[key] = member;
    }
    const platform = fields['platform'];
    if (platform === undefined || platform.length === 0) throw malformed('no "platform" member');
    if (canonicalJson(value, 'EVIDENCE_MALFORMED') !== text) {
      throw malformed('not in canonical form (sorted keys, no whitespace, no duplicate keys)');
    }
    return { platform, fields: Object.freeze(fields) };
  });
}

export function encodeEnvelope(fields: Readonly<Record<string, string>>): Uint8Array {
  return guarded('encodeEnvelope', () => {
    if (typeof fields['platform'] !== 'string') throw new AttestationError('INVALID_ARGUMENT', 'envelope needs a platform');
    for (const v of Object.values(fields)) {
      if (typeof v !== 'string') throw new AttestationError('INVALID_ARGUMENT', 'envelope members must be strings');
    }
    return new Uint8Array(Buffer.from(canonicalJson({ ...fields }), 'utf8'));
  });
}
