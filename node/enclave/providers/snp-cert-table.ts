import { EvidenceProviderError } from './errors.js';

/**
 * The SEV-SNP certificate table that configfs-tsm returns in `auxblob` when the
 * provider is sev_guest: the "cert_table" of the GHCB specification (AMD 56421,
 * section 4.1.8.1, MSG_REPORT_REQ / extended guest request). Entries of 24
 * bytes { GUID[16], offset u32 LE, length u32 LE }, terminated by an all-zero
 * entry; offsets are from the start of the table; the certificates (DER) follow.
 *
 * GUIDs are compared in RFC 4122 byte order (as AMD's and virtee's tooling write
 * them); the mixed-endian (Microsoft) order is recognised too, because both
 * spellings of the same GUID occur in host tooling.
 */

export type SnpCertKind = 'vcek' | 'vlek' | 'ask' | 'ark' | 'crl' | 'unknown';

export interface SnpCertificate {
  readonly guid: string;
  readonly kind: SnpCertKind;
  readonly der: Uint8Array;
}

export const SNP_CERT_GUIDS: Readonly<Record<string, SnpCertKind>> = Object.freeze({
  '63da758d-e664-4564-adc5-f4b93be8accd': 'vcek',
  'a8074bc2-a25a-483e-aae6-39c045a0b8a1': 'vlek',
  '4ab7b379-bbac-4fe4-a02f-05aef327c782': 'ask',
  'c0b406a4-a803-4952-9743-3fb6014cd0ae': 'ark',
  '92f81bc3-5811-4d3d-97ff-d19f88dc67ea': 'crl',
});

const ENTRY = 24;

function guidRfc(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function guidMixed(b: Uint8Array): string {
  const le = Buffer.from([b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.subarray(8)]);
  return guidRfc(le);
}

/** GUID string → its 16 table bytes (RFC 4122 order). */
export function guidBytes(guid: string): Uint8Array {
  return new Uint8Array(Buffer.from(guid.replace(/-/g, ''), 'hex'));
}

function malformed(message: string): EvidenceProviderError {
  return new EvidenceProviderError('REPORT_MALFORMED', `SEV-SNP certificate table (auxblob): ${message}`);
}

export function parseSnpCertTable(table: Uint8Array): SnpCertificate[] {
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const entries: Array<{ guid: Uint8Array; offset: number; length: number }> = [];
  let tableEnd = -1;
  for (let at = 0; tableEnd < 0; at += ENTRY) {
    if (at + ENTRY > table.length) throw malformed('no terminating all-zero entry');
    const guid = table.subarray(at, at + 16);
    const offset = view.getUint32(at + 16, true);
    const length = view.getUint32(at + 20, true);
    if (guid.every((x) => x === 0)) {
      if (offset !== 0 || length !== 0) throw malformed('terminator entry is not all zero');
      tableEnd = at + ENTRY;
    } else entries.push({ guid, offset, length });
  }
  return entries.map(({ guid, offset, length }, i) => {
    if (length === 0 || offset < tableEnd || offset + length > table.length) {
      throw malformed(`entry ${i} points outside the certificate area (offset ${offset}, length ${length}, blob ${table.length})`);
    }
    const rfc = guidRfc(guid);
    const mixed = guidMixed(guid);
    const rfcKind = SNP_CERT_GUIDS[rfc];
    const mixedKind = SNP_CERT_GUIDS[mixed];
    return {
      guid: rfcKind === undefined && mixedKind !== undefined ? mixed : rfc,
      kind: rfcKind ?? mixedKind ?? 'unknown',
      der: new Uint8Array(table.subarray(offset, offset + length)),
    };
  });
}

/** Builds a table (used by tests and tools): entries in order, certificates after the terminator. */
export function encodeSnpCertTable(certs: ReadonlyArray<{ guid: string; der: Uint8Array }>): Uint8Array {
  const head = (certs.length + 1) * ENTRY;
  const total = head + certs.reduce((n, c) => n + c.der.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let data = head;
  certs.forEach((c, i) => {
    out.set(guidBytes(c.guid), i * ENTRY);
    view.setUint32(i * ENTRY + 16, data, true);
    view.setUint32(i * ENTRY + 20, c.der.length, true);
    out.set(c.der, data);
    data += c.der.length;
  });
  return out;
}
