import { KeyObject, createHash, createPublicKey, sign, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * Test PKI and DCAP quotes in the real Intel layouts, made by the tests (no
 * samples needed): a test "SGX Root CA" → "PCK Platform CA" → "PCK Certificate"
 * (with the SGX extensions encoded like Intel's) and a "TCB Signing" cert,
 * ECDSA P-256 throughout; quotes v3 (SGX) and v4 (SGX / TDX) signed by a test
 * attestation key whose QE report is signed by the test PCK key.
 */

type CryptoKeyPair = webcrypto.CryptoKeyPair;
const crypto = webcrypto;
x509.cryptoProvider.set(crypto as never);

const ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIG = { name: 'ECDSA', hash: 'SHA-256' } as const;
const ORG = 'O=Cloister Test, L=Nowhere, ST=CA, C=US';
export const INTEL_QE_VENDOR = '939a7233f79c4ca9940a0db3957f0607';

// ---------------------------------------------------------------- tiny DER encoder

function len(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}
const tlv = (tag: number, content: Uint8Array | number[]): Uint8Array => new Uint8Array([tag, ...len(content.length), ...content]);
export const der = {
  seq: (...items: Uint8Array[]): Uint8Array => tlv(0x30, items.flatMap((i) => [...i])),
  octets: (b: Uint8Array): Uint8Array => tlv(0x04, b),
  int: (n: number): Uint8Array => {
    const bytes: number[] = [];
    let v = n;
    do {
      bytes.unshift(v & 0xff);
      v = Math.floor(v / 256);
    } while (v > 0);
    if (bytes[0]! & 0x80) bytes.unshift(0);
    return tlv(0x02, bytes);
  },
  enumerated: (n: number): Uint8Array => tlv(0x0a, [n]),
  bool: (b: boolean): Uint8Array => tlv(0x01, [b ? 0xff : 0]),
  oid: (dotted: string): Uint8Array => {
    const arcs = dotted.split('.').map(Number);
    const body: number[] = [arcs[0]! * 40 + arcs[1]!];
    for (const arc of arcs.slice(2)) {
      const chunk: number[] = [];
      let v = arc;
      do {
        chunk.unshift((v & 0x7f) | (chunk.length ? 0x80 : 0));
        v = Math.floor(v / 128);
      } while (v > 0);
      body.push(...chunk);
    }
    return tlv(0x06, body);
  },
};

const SGX = '1.2.840.113741.1.13.1';

export interface PckTcb {
  readonly ppid: Uint8Array;
  readonly components: readonly number[];
  readonly pceSvn: number;
  readonly pceId: Uint8Array;
  readonly fmspc: Uint8Array;
  readonly sgxType: number;
}

export const DEFAULT_PCK_TCB: PckTcb = {
  ppid: new Uint8Array(16).fill(0xa5),
  components: [5, 5, 2, 2, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  pceSvn: 13,
  pceId: new Uint8Array([0, 0]),
  fmspc: Uint8Array.from([0x00, 0x90, 0x6e, 0xa1, 0x00, 0x00]),
  sgxType: 0,
};

/** DER of the 1.2.840.113741.1.13.1 extension value, in Intel's layout. */
export function sgxExtensionValue(t: PckTcb): Uint8Array {
  const entry = (arc: string, value: Uint8Array): Uint8Array => der.seq(der.oid(`${SGX}.${arc}`), value);
  const tcb = der.seq(
    ...t.components.map((svn, i) => entry(`2.${i + 1}`, der.int(svn))),
    entry('2.17', der.int(t.pceSvn)),
    entry('2.18', der.octets(Uint8Array.from(t.components))),
  );
  return der.seq(
    entry('1', der.octets(t.ppid)),
    entry('2', tcb),
    entry('3', der.octets(t.pceId)),
    entry('4', der.octets(t.fmspc)),
    entry('5', der.enumerated(t.sgxType)),
  );
}

// ---------------------------------------------------------------- PKI

export interface Issued {
  readonly keys: CryptoKeyPair;
  readonly cert: x509.X509Certificate;
  readonly der: Uint8Array;
  readonly pem: string;
  readonly privateKey: KeyObject;
}

export async function keyPair(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

function issued(keys: CryptoKeyPair, cert: x509.X509Certificate): Issued {
  return {
    keys,
    cert,
    der: new Uint8Array(cert.rawData),
    pem: cert.toString('pem'),
    privateKey: KeyObject.from(keys.privateKey),
  };
}

let serial = 0x1000;
const nextSerial = (): string => (serial++).toString(16).padStart(8, '0');

export async function makeRoot(name = 'Test SGX Root CA', notBefore = new Date('2020-01-01T00:00:00Z'), notAfter = new Date('2049-12-31T23:59:59Z')): Promise<Issued> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: `CN=${name}, ${ORG}`,
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: SIG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return issued(keys, cert);
}

export interface IssueOptions {
  readonly name: string;
  readonly ca?: boolean;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly extensions?: x509.Extension[];
  readonly serialNumber?: string;
  readonly usages?: x509.KeyUsageFlags;
}

export async function issue(issuer: Issued, o: IssueOptions): Promise<Issued> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: o.serialNumber ?? nextSerial(),
    subject: `CN=${o.name}, ${ORG}`,
    issuer: issuer.cert.subject,
    notBefore: o.notBefore ?? new Date('2021-01-01T00:00:00Z'),
    notAfter: o.notAfter ?? new Date('2035-01-01T00:00:00Z'),
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: SIG,
    extensions: [
      new x509.BasicConstraintsExtension(o.ca ?? false, o.ca ? 0 : undefined, true),
      new x509.KeyUsagesExtension(
        o.usages ?? (o.ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation),
        true,
      ),
      ...(o.extensions ?? []),
    ],
  });
  return issued(keys, cert);
}

export async function issuePck(ca: Issued, o: Partial<IssueOptions> & { tcb?: PckTcb; noSgxExtension?: boolean } = {}): Promise<Issued> {
  const ext = o.noSgxExtension ? [] : [new x509.Extension(SGX, false, sgxExtensionValue(o.tcb ?? DEFAULT_PCK_TCB))];
  return issue(ca, { name: 'Test SGX PCK Certificate', ...o, extensions: [...(o.extensions ?? []), ...ext] });
}

export interface TestPki {
  readonly root: Issued;
  readonly platformCa: Issued;
  readonly pck: Issued;
  readonly tcbSigning: Issued;
  /** SPKI PEM of the root key: what `trustedRoots` pins. */
  readonly rootSpkiPem: string;
}

export async function makePki(): Promise<TestPki> {
  const root = await makeRoot();
  const platformCa = await issue(root, { name: 'Test SGX PCK Platform CA', ca: true });
  const pck = await issuePck(platformCa, { notBefore: new Date('2023-01-01T00:00:00Z'), notAfter: new Date('2030-01-01T00:00:00Z') });
  const tcbSigning = await issue(root, { name: 'Test SGX TCB Signing' });
  return { root, platformCa, pck, tcbSigning, rootSpkiPem: spkiPem(root) };
}

export function spkiPem(i: Issued): string {
  return KeyObject.from(i.keys.publicKey).export({ type: 'spki', format: 'pem' }) as string;
}

export function chainPem(...certs: Issued[]): string {
  return certs.map((c) => c.pem.replace(/\r\n/g, '\n') + '\n').join('');
}

export async function makeCrl(issuer: Issued, revokedSerials: string[], thisUpdate: Date, nextUpdate: Date): Promise<Uint8Array> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: issuer.cert.subject,
    thisUpdate,
    nextUpdate,
    entries: revokedSerials.map((serialNumber) => ({ serialNumber, revocationDate: thisUpdate })),
    signingAlgorithm: SIG,
    signingKey: issuer.keys.privateKey,
  });
  return new Uint8Array(crl.rawData);
}

// ---------------------------------------------------------------- quotes

export interface ReportFields {
  cpuSvn?: Uint8Array;
  miscSelect?: number;
  /** ATTRIBUTES.FLAGS low byte (bit 1 = DEBUG). */
  flags?: number;
  xfrm?: number;
  mrEnclave?: Uint8Array;
  mrSigner?: Uint8Array;
  isvProdId?: number;
  isvSvn?: number;
  reportData?: Uint8Array;
}

export function reportBody(f: ReportFields = {}): Uint8Array {
  const b = new Uint8Array(384);
  b.set(f.cpuSvn ?? new Uint8Array(16).fill(3), 0);
  new DataView(b.buffer).setUint32(16, f.miscSelect ?? 0, true);
  b[48] = f.flags ?? 0x05;
  b[56] = f.xfrm ?? 0x07;
  b.set(f.mrEnclave ?? new Uint8Array(32).fill(0x11), 64);
  b.set(f.mrSigner ?? new Uint8Array(32).fill(0x22), 128);
  new DataView(b.buffer).setUint16(256, f.isvProdId ?? 7, true);
  new DataView(b.buffer).setUint16(258, f.isvSvn ?? 3, true);
  b.set(f.reportData ?? new Uint8Array(64).fill(0x33), 320);
  return b;
}

export const QE_MRSIGNER = new Uint8Array(32).fill(0x8c);

export interface TdFields {
  teeTcbSvn?: Uint8Array;
  tdAttributes?: number;
  mrTd?: Uint8Array;
  reportData?: Uint8Array;
}

export function tdReportBody(f: TdFields = {}): Uint8Array {
  const b = new Uint8Array(584);
  b.set(f.teeTcbSvn ?? Uint8Array.from([4, 1, 7]), 0);
  b[120] = f.tdAttributes ?? 0;
  b.set(f.mrTd ?? new Uint8Array(48).fill(0x44), 136);
  b.set(f.reportData ?? new Uint8Array(64).fill(0x55), 520);
  return b;
}

export interface QuoteOptions {
  /** Private key of the attestation key. */
  attestationKey: KeyObject;
  version?: 3 | 4;
  tee?: 'sgx' | 'tdx';
  body?: Uint8Array;
  pck: Issued;
  chain: string;
  qeReport?: ReportFields;
  qeSvn?: number;
  authData?: Uint8Array;
  /** Override what the QE report's REPORTDATA binds (default: the real attestation key). */
  bindKey?: Uint8Array;
  certDataType?: number;
  qeVendorId?: string;
  trailingNul?: boolean;
}

const u16 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff];
const u32 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];

export function rawPublicKey(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  return new Uint8Array([...Buffer.from(jwk.x!, 'base64url'), ...Buffer.from(jwk.y!, 'base64url')]);
}

export function p1363(data: Uint8Array, key: KeyObject): Uint8Array {
  return new Uint8Array(sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }));
}

let attKeyCache: KeyObject | undefined;
export async function attestationKey(): Promise<KeyObject> {
  attKeyCache ??= KeyObject.from((await keyPair()).privateKey);
  return attKeyCache;
}

/** Builds a signed DCAP quote (v3 SGX by default). `attestationKey` must be a private key. */
export function buildQuote(o: QuoteOptions): Uint8Array {
  const version = o.version ?? 3;
  const tee = o.tee ?? 'sgx';
  const body = o.body ?? (tee === 'tdx' ? tdReportBody() : reportBody());
  const header = new Uint8Array(48);
  header.set([...u16(version), ...u16(2), ...u32(tee === 'tdx' ? 0x81 : 0)], 0);
  if (version === 3) header.set([...u16(o.qeSvn ?? 9), ...u16(13)], 8);
  header.set(Buffer.from(o.qeVendorId ?? INTEL_QE_VENDOR, 'hex'), 12);
  header.set(new Uint8Array(20).fill(0x77), 28);
  const signed = new Uint8Array([...header, ...body]);
  const sig = p1363(signed, o.attestationKey);
  const attPub = rawPublicKey(createPublicKey(o.attestationKey));
  const auth = o.authData ?? Uint8Array.from({ length: 32 }, (_, i) => i);
  const bind = createHash('sha256').update(o.bindKey ?? attPub).update(auth).digest();
  const qeReportData = new Uint8Array(64);
  qeReportData.set(bind, 0);
  const qeReport = reportBody({ mrSigner: QE_MRSIGNER, isvProdId: 1, isvSvn: o.qeSvn ?? 9, flags: 0x15, xfrm: 0x07, reportData: qeReportData, ...o.qeReport });
  const qeSig = p1363(qeReport, o.pck.privateKey);
  const certText = new TextEncoder().encode(o.chain + (o.trailingNul === false ? '' : '\0'));
  const certData = [...u16(o.certDataType ?? 5), ...u32(certText.length), ...certText];
  const qeBlock = [...qeReport, ...qeSig, ...u16(auth.length), ...auth, ...certData];
  const tail = version === 4 ? [...u16(6), ...u32(qeBlock.length), ...qeBlock] : qeBlock;
  const sigData = [...sig, ...attPub, ...tail];
  return new Uint8Array([...signed, ...u32(sigData.length), ...sigData]);
}

// ---------------------------------------------------------------- collateral

export function signCollateral(member: 'tcbInfo' | 'enclaveIdentity', value: unknown, signer: Issued): string {
  const text = JSON.stringify(value);
  const sig = Buffer.from(p1363(new TextEncoder().encode(text), signer.privateKey)).toString('hex');
  return `{"${member}":${text},"signature":"${sig}"}`;
}

export interface LevelSpec {
  components: number[];
  pceSvn: number;
  status: string;
  advisoryIDs?: string[];
  tcbDate?: string;
}

export function tcbInfoValue(fmspcHex: string, levels: LevelSpec[], issueDate = '2025-01-01T00:00:00Z', nextUpdate = '2025-02-01T00:00:00Z'): unknown {
  return {
    id: 'SGX',
    version: 3,
    issueDate,
    nextUpdate,
    fmspc: fmspcHex,
    pceId: '0000',
    tcbType: 0,
    tcbEvaluationDataNumber: 17,
    tcbLevels: levels.map((l) => ({
      tcb: { sgxtcbcomponents: l.components.map((svn) => ({ svn })), pcesvn: l.pceSvn },
      tcbDate: l.tcbDate ?? '2024-03-13T00:00:00Z',
      tcbStatus: l.status,
      ...(l.advisoryIDs ? { advisoryIDs: l.advisoryIDs } : {}),
    })),
  };
}

export function qeIdentityValue(
  levels: Array<{ isvsvn: number; status: string; advisoryIDs?: string[] }>,
  o: { id?: string; mrsigner?: string; isvprodid?: number; issueDate?: string; nextUpdate?: string } = {},
): unknown {
  return {
    id: o.id ?? 'QE',
    version: 2,
    issueDate: o.issueDate ?? '2025-01-01T00:00:00Z',
    nextUpdate: o.nextUpdate ?? '2025-02-01T00:00:00Z',
    tcbEvaluationDataNumber: 17,
    miscselect: '00000000',
    miscselectMask: 'FFFFFFFF',
    attributes: '11000000000000000000000000000000',
    attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
    mrsigner: o.mrsigner ?? Buffer.from(QE_MRSIGNER).toString('hex').toUpperCase(),
    isvprodid: o.isvprodid ?? 1,
    tcbLevels: levels.map((l) => ({ tcb: { isvsvn: l.isvsvn }, tcbDate: '2024-03-13T00:00:00Z', tcbStatus: l.status, ...(l.advisoryIDs ? { advisoryIDs: l.advisoryIDs } : {}) })),
  };
}
