import { AttestationError } from '../errors.js';
import { fromHex } from '../internal/bytes.js';
import type { TcbStatus } from '../result.js';

/**
 * Intel PCS collateral: TCB info (`/sgx/certification/v4/tcb`, JSON
 * `{"tcbInfo":{…},"signature":"<hex r‖s>"}`) and enclave identity
 * (`/sgx/certification/v4/qe/identity`, `{"enclaveIdentity":{…},"signature":…}`).
 *
 * The signature covers the exact UTF-8 bytes of the member value as served, so
 * the value's raw text span is located (and duplicate top-level members are
 * refused) instead of re-serializing anything.
 *
 * Malformed collateral is INVALID_ARGUMENT (it is an argument, not the evidence).
 */

export const MAX_COLLATERAL_CHARS = 1 << 20;

export const TCB_STATUSES: readonly TcbStatus[] = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
];

function bad(what: string, message: string): AttestationError {
  return new AttestationError('INVALID_ARGUMENT', `${what}: ${message}`);
}

// ---------------------------------------------------------------- raw JSON member spans

const isWs = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r';

function skipWs(s: string, i: number): number {
  while (isWs(s[i])) i++;
  return i;
}

function scanString(s: string, i: number, what: string): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s[j];
    if (c === '\\') j++;
    else if (c === '"') return j + 1;
  }
  throw bad(what, 'unterminated string');
}

function scanValue(s: string, i: number, what: string): number {
  const c = s[i];
  if (c === '"') return scanString(s, i, what);
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let j = i; j < s.length; ) {
      const d = s[j];
      if (d === '"') {
        j = scanString(s, j, what);
        continue;
      }
      if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') {
        depth--;
        if (depth === 0) return j + 1;
      }
      j++;
    }
    throw bad(what, 'unterminated value');
  }
  let j = i;
  while (j < s.length && !isWs(s[j]) && s[j] !== ',' && s[j] !== '}' && s[j] !== ']') j++;
  if (j === i) throw bad(what, 'missing value');
  return j;
}

/** Raw text spans [start, end) of the members of a top-level JSON object (text already known to be valid JSON). */
function memberSpans(text: string, what: string): Map<string, [number, number]> {
  const spans = new Map<string, [number, number]>();
  let i = skipWs(text, 0);
  if (text[i] !== '{') throw bad(what, 'not a JSON object');
  i = skipWs(text, i + 1);
  if (text[i] === '}') return spans;
  for (;;) {
    if (text[i] !== '"') throw bad(what, 'expected a member name');
    const keyEnd = scanString(text, i, what);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = skipWs(text, keyEnd);
    if (text[i] !== ':') throw bad(what, 'expected ":"');
    i = skipWs(text, i + 1);
    const end = scanValue(text, i, what);
    if (spans.has(key)) throw bad(what, `duplicate member "${key}"`);
    spans.set(key, [i, end]);
    i = skipWs(text, end);
    if (text[i] === ',') {
      i = skipWs(text, i + 1);
      continue;
    }
    if (text[i] === '}') return spans;
    throw bad(what, 'expected "," or "}"');
  }
}

export interface SignedCollateral {
  /** The member value, parsed from exactly the signed text. */
  readonly value: unknown;
  /** UTF-8 bytes of the member value's text: what Intel signed. */
  readonly signed: Uint8Array;
  /** Raw r ‖ s (64 bytes). */
  readonly signature: Uint8Array;
}

/** Splits `{"<member>":{…},"signature":"<hex>"}` into the signed bytes, the parsed value and the signature. */
export function splitSignedCollateral(text: unknown, member: 'tcbInfo' | 'enclaveIdentity', what: string): SignedCollateral {
  if (typeof text !== 'string') throw bad(what, 'must be JSON text (a string)');
  if (text.length > MAX_COLLATERAL_CHARS) throw bad(what, `longer than ${MAX_COLLATERAL_CHARS} characters`);
  let whole: unknown;
  try {
    whole = JSON.parse(text);
  } catch (err) {
    throw new AttestationError('INVALID_ARGUMENT', `${what}: not valid JSON`, undefined, { cause: err });
  }
  if (whole === null || typeof whole !== 'object' || Array.isArray(whole)) throw bad(what, 'not a JSON object');
  const spans = memberSpans(text, what);
  const span = spans.get(member);
  const sigSpan = spans.get('signature');
  if (span === undefined) throw bad(what, `no "${member}" member`);
  if (sigSpan === undefined) throw bad(what, 'no "signature" member');
  const valueText = text.slice(span[0], span[1]);
  const value = JSON.parse(valueText) as unknown;
  const sigText = JSON.parse(text.slice(sigSpan[0], sigSpan[1])) as unknown;
  const signature = typeof sigText === 'string' ? fromHex(sigText) : undefined;
  if (signature === undefined || signature.length !== 64) throw bad(what, 'signature is not 64 bytes of hex');
  return { value, signed: new TextEncoder().encode(valueText), signature };
}

// ---------------------------------------------------------------- typed readers

type Obj = Record<string, unknown>;

function obj(v: unknown, what: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad(what, 'not an object');
  return v as Obj;
}

function int(v: unknown, what: string, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) throw bad(what, `not an integer in 0..${max}`);
  return v;
}

function hexField(v: unknown, what: string, bytes: number): Uint8Array {
  const b = typeof v === 'string' ? fromHex(v) : undefined;
  if (b === undefined || b.length !== bytes) throw bad(what, `not ${bytes} bytes of hex`);
  return b;
}

const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;

function isoText(v: unknown, what: string): string {
  date(v, what);
  return v as string;
}

function date(v: unknown, what: string): Date {
  const d = typeof v === 'string' && ISO_RE.test(v) ? new Date(v) : undefined;
  if (d === undefined || Number.isNaN(d.getTime())) throw bad(what, 'not an ISO-8601 UTC time');
  return d;
}

function status(v: unknown, what: string): TcbStatus {
  if (typeof v !== 'string' || !(TCB_STATUSES as readonly string[]).includes(v)) throw bad(what, `unknown TCB status ${JSON.stringify(v)?.slice(0, 40)}`);
  return v as TcbStatus;
}

function advisories(v: unknown, what: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > 1000 || !v.every((a) => typeof a === 'string' && a.length <= 64)) throw bad(what, 'advisoryIDs is not a list of ids');
  return v as string[];
}

function list(v: unknown, what: string, max = 10_000): unknown[] {
  if (!Array.isArray(v) || v.length > max) throw bad(what, 'not a list');
  return v;
}

// ---------------------------------------------------------------- TCB info

export interface TcbLevel {
  readonly sgxComponents: readonly number[];
  readonly pceSvn: number;
  /** TDX TCB info only. */
  readonly tdxComponents?: readonly number[];
  readonly tcbDate: string;
  readonly status: TcbStatus;
  readonly advisoryIds: readonly string[];
}

export interface TcbInfo {
  /** 'SGX' or 'TDX' (version 2 has no id: SGX). */
  readonly id: string;
  readonly version: number;
  readonly issueDate: Date;
  readonly nextUpdate: Date;
  /** Lowercase hex. */
  readonly fmspc: string;
  readonly pceId: string;
  readonly tcbType: number;
  readonly tcbEvaluationDataNumber: number;
  readonly levels: readonly TcbLevel[];
}

function components(v: unknown, what: string): number[] {
  const items = list(v, what, 16);
  if (items.length !== 16) throw bad(what, 'must list 16 components');
  return items.map((c, i) => int(obj(c, `${what}[${i}]`)['svn'], `${what}[${i}].svn`, 255));
}

export function parseTcbInfo(value: unknown): TcbInfo {
  const what = 'TCB info';
  const t = obj(value, what);
  const version = int(t['version'], `${what} version`, 1000);
  if (version !== 2 && version !== 3) throw bad(what, `version ${version} is not supported (2 and 3 are)`);
  const id = version === 2 ? 'SGX' : t['id'];
  if (id !== 'SGX' && id !== 'TDX') throw bad(what, `id ${JSON.stringify(id)?.slice(0, 20)} is not SGX or TDX`);
  const levels = list(t['tcbLevels'], `${what} tcbLevels`).map((lv, n): TcbLevel => {
    const w = `${what} tcbLevels[${n}]`;
    const l = obj(lv, w);
    const tcb = obj(l['tcb'], `${w}.tcb`);
    let sgxComponents: number[];
    if (version === 2) {
      sgxComponents = [];
      for (let i = 1; i <= 16; i++) sgxComponents.push(int(tcb[`sgxtcbcomp${String(i).padStart(2, '0')}svn`], `${w} sgxtcbcomp${i}svn`, 255));
    } else {
      sgxComponents = components(tcb['sgxtcbcomponents'], `${w}.sgxtcbcomponents`);
    }
    const level: TcbLevel = {
      sgxComponents,
      pceSvn: int(tcb['pcesvn'], `${w}.pcesvn`, 0xffff),
      tcbDate: isoText(l['tcbDate'], `${w}.tcbDate`),
      status: status(l['tcbStatus'], `${w}.tcbStatus`),
      advisoryIds: advisories(l['advisoryIDs'], w),
    };
    return id === 'TDX' ? { ...level, tdxComponents: components(tcb['tdxtcbcomponents'], `${w}.tdxtcbcomponents`) } : level;
  });
  return {
    id,
    version,
    issueDate: date(t['issueDate'], `${what} issueDate`),
    nextUpdate: date(t['nextUpdate'], `${what} nextUpdate`),
    fmspc: Buffer.from(hexField(t['fmspc'], `${what} fmspc`, 6)).toString('hex'),
    pceId: Buffer.from(hexField(t['pceId'], `${what} pceId`, 2)).toString('hex'),
    tcbType: int(t['tcbType'], `${what} tcbType`, 0xffff),
    tcbEvaluationDataNumber: int(t['tcbEvaluationDataNumber'], `${what} tcbEvaluationDataNumber`, 0xffffffff),
    levels,
  };
}

/**
 * The first TCB level (in Intel's order, newest first) whose every SGX
 * component SVN and PCESVN is <= the platform's (PCK certificate) values.
 */
export function matchTcbLevel(info: TcbInfo, pckComponents: readonly number[], pckPceSvn: number): TcbLevel | undefined {
  return info.levels.find(
    (level) => level.sgxComponents.every((svn, i) => (pckComponents[i] ?? 0) >= svn) && pckPceSvn >= level.pceSvn,
  );
}

// ---------------------------------------------------------------- enclave identity

export interface EnclaveIdentityLevel {
  readonly isvSvn: number;
  readonly tcbDate: string;
  readonly status: TcbStatus;
  readonly advisoryIds: readonly string[];
}

export interface EnclaveIdentity {
  /** 'QE', 'QVE' or 'TD_QE'. */
  readonly id: string;
  readonly version: number;
  readonly issueDate: Date;
  readonly nextUpdate: Date;
  readonly tcbEvaluationDataNumber: number;
  readonly miscselect: number;
  readonly miscselectMask: number;
  readonly attributes: Uint8Array;
  readonly attributesMask: Uint8Array;
  /** Lowercase hex. */
  readonly mrsigner: string;
  readonly isvProdId: number;
  readonly levels: readonly EnclaveIdentityLevel[];
}

const u32be = (b: Uint8Array): number => b[0]! * 0x1000000 + ((b[1]! << 16) | (b[2]! << 8) | b[3]!);

export function parseEnclaveIdentity(value: unknown): EnclaveIdentity {
  const what = 'QE identity';
  const e = obj(value, what);
  const version = int(e['version'], `${what} version`, 1000);
  if (version !== 2) throw bad(what, `version ${version} is not supported (2 is)`);
  const id = e['id'];
  if (id !== 'QE' && id !== 'QVE' && id !== 'TD_QE') throw bad(what, `id ${JSON.stringify(id)?.slice(0, 20)} is not QE, QVE or TD_QE`);
  return {
    id,
    version,
    issueDate: date(e['issueDate'], `${what} issueDate`),
    nextUpdate: date(e['nextUpdate'], `${what} nextUpdate`),
    tcbEvaluationDataNumber: int(e['tcbEvaluationDataNumber'], `${what} tcbEvaluationDataNumber`, 0xffffffff),
    // MISCSELECT is shown as 4 bytes of hex, big-endian (the report stores it little-endian).
    miscselect: u32be(hexField(e['miscselect'], `${what} miscselect`, 4)),
    miscselectMask: u32be(hexField(e['miscselectMask'], `${what} miscselectMask`, 4)),
    attributes: hexField(e['attributes'], `${what} attributes`, 16),
    attributesMask: hexField(e['attributesMask'], `${what} attributesMask`, 16),
    mrsigner: Buffer.from(hexField(e['mrsigner'], `${what} mrsigner`, 32)).toString('hex'),
    isvProdId: int(e['isvprodid'], `${what} isvprodid`, 0xffff),
    levels: list(e['tcbLevels'], `${what} tcbLevels`).map((lv, n): EnclaveIdentityLevel => {
      const w = `${what} tcbLevels[${n}]`;
      const l = obj(lv, w);
      return {
        isvSvn: int(obj(l['tcb'], `${w}.tcb`)['isvsvn'], `${w}.tcb.isvsvn`, 0xffff),
        tcbDate: isoText(l['tcbDate'], `${w}.tcbDate`),
        status: status(l['tcbStatus'], `${w}.tcbStatus`),
        advisoryIds: advisories(l['advisoryIDs'], w),
      };
    }),
  };
}

/** The first identity level whose ISVSVN is <= the enclave's ISVSVN. */
export function matchEnclaveLevel(identity: EnclaveIdentity, isvSvn: number): EnclaveIdentityLevel | undefined {
  return identity.levels.find((level) => isvSvn >= level.isvSvn);
}

/**
 * Intel's rule for combining the platform TCB status with the QE's
 * (QVL convergeTcbStatusWithQeTcbStatus): an out-of-date QE makes the result
 * out of date.
 */
export function convergeTcbStatus(platform: TcbStatus, qe: TcbStatus | undefined): TcbStatus {
  if (qe !== 'OutOfDate') return platform;
  if (platform === 'UpToDate' || platform === 'SWHardeningNeeded') return 'OutOfDate';
  if (platform === 'ConfigurationNeeded' || platform === 'ConfigurationAndSWHardeningNeeded') return 'OutOfDateConfigurationNeeded';
  return platform;
}
