import { AttestationError } from '../errors.js';
import { toHex } from '../internal/bytes.js';
import { DerReader, TAG, type Tlv } from './der.js';
import type { Cert } from './x509.js';

/**
 * Intel SGX PCK certificate extensions (OID 1.2.840.113741.1.13.1 = SEQUENCE of
 * SEQUENCE { OID, value }):
 *   .1 PPID (16 bytes) · .2 TCB (.2.1–.2.16 component SVNs, .2.17 PCESVN, .2.18 CPUSVN)
 *   · .3 PCE-ID (2 bytes) · .4 FMSPC (6 bytes) · .5 SGX type (ENUMERATED)
 *   · .6 platform instance id (16 bytes, optional) · .7 configuration (optional)
 */

export const OID_SGX_EXTENSIONS = '1.2.840.113741.1.13.1';

export type SgxType = 'standard' | 'scalable' | 'scalable-with-integrity' | `unknown-${number}`;

export interface PckExtensions {
  /** Platform provisioning id, 16 bytes hex. */
  readonly ppid: string;
  /** The 16 SGX TCB component SVNs the PCK certificate was issued for. */
  readonly tcbComponents: readonly number[];
  readonly pceSvn: number;
  /** CPUSVN, 16 bytes hex. */
  readonly cpuSvn: string;
  /** PCE id, 2 bytes hex. */
  readonly pceId: string;
  /** FMSPC (family-model-stepping-platform-custom SKU), 6 bytes hex. */
  readonly fmspc: string;
  readonly sgxType: SgxType;
  /** Platform instance id (Processor/Platform CA multi-package platforms), 16 bytes hex. */
  readonly platformInstanceId?: string;
}

const SGX_TYPES: readonly SgxType[] = ['standard', 'scalable', 'scalable-with-integrity'];

function fail(message: string): AttestationError {
  return new AttestationError('CHAIN_INVALID', `PCK certificate SGX extensions: ${message}`);
}

/** Decodes the SGX extensions of a PCK certificate; a PCK certificate without them is not usable (CHAIN_INVALID). */
export function pckExtensions(cert: Cert): PckExtensions {
  const ext = cert.extensions.get(OID_SGX_EXTENSIONS);
  if (ext === undefined) throw fail('extension 1.2.840.113741.1.13.1 is missing (not a PCK certificate)');
  const r = new DerReader(ext.value, 'CHAIN_INVALID', 'PCK certificate SGX extensions');
  const entries = new Map<string, Tlv>();
  for (const item of r.children(r.readWhole(0, ext.value.length, TAG.SEQUENCE))) {
    const [oidTlv, value, ...rest] = r.children(r.expectTag(item, TAG.SEQUENCE));
    if (oidTlv === undefined || value === undefined || rest.length > 0) throw fail('bad entry');
    const oid = r.oid(oidTlv);
    if (entries.has(oid)) throw fail(`duplicate ${oid}`);
    entries.set(oid, value);
  }
  const get = (arc: string): Tlv => {
    const v = entries.get(`${OID_SGX_EXTENSIONS}.${arc}`);
    if (v === undefined) throw fail(`entry .${arc} is missing`);
    return v;
  };
  const octets = (arc: string, size: number): string => {
    const b = r.bytes(r.expectTag(get(arc), TAG.OCTET_STRING));
    if (b.length !== size) throw fail(`entry .${arc} is not ${size} bytes`);
    return toHex(b);
  };

  // .2 TCB
  const tcb = new Map<string, Tlv>();
  for (const item of r.children(r.expectTag(get('2'), TAG.SEQUENCE))) {
    const [oidTlv, value, ...rest] = r.children(r.expectTag(item, TAG.SEQUENCE));
    if (oidTlv === undefined || value === undefined || rest.length > 0) throw fail('bad TCB entry');
    const oid = r.oid(oidTlv);
    if (tcb.has(oid)) throw fail(`duplicate ${oid}`);
    tcb.set(oid, value);
  }
  const tcbEntry = (n: number): Tlv => {
    const v = tcb.get(`${OID_SGX_EXTENSIONS}.2.${n}`);
    if (v === undefined) throw fail(`TCB entry .2.${n} is missing`);
    return v;
  };
  const tcbComponents: number[] = [];
  for (let n = 1; n <= 16; n++) {
    const svn = r.smallUint(tcbEntry(n));
    if (svn > 255) throw fail(`TCB component ${n} out of range`);
    tcbComponents.push(svn);
  }
  const pceSvn = r.smallUint(tcbEntry(17));
  if (pceSvn > 0xffff) throw fail('PCESVN out of range');
  const cpuSvnBytes = r.bytes(r.expectTag(tcbEntry(18), TAG.OCTET_STRING));
  if (cpuSvnBytes.length !== 16) throw fail('CPUSVN is not 16 bytes');

  const typeCode = r.smallUint(get('5'), TAG.ENUMERATED);
  const out: PckExtensions = {
    ppid: octets('1', 16),
    tcbComponents,
    pceSvn,
    cpuSvn: toHex(cpuSvnBytes),
    pceId: octets('3', 2),
    fmspc: octets('4', 6),
    sgxType: SGX_TYPES[typeCode] ?? `unknown-${typeCode}`,
  };
  const instance = entries.get(`${OID_SGX_EXTENSIONS}.6`);
  if (instance !== undefined) {
    const b = r.bytes(r.expectTag(instance, TAG.OCTET_STRING));
    if (b.length !== 16) throw fail('platform instance id is not 16 bytes');
    return { ...out, platformInstanceId: toHex(b) };
  }
  return out;
}
