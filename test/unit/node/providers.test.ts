import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeSnpReport, parseSnpReport, signedPart, withSnpSignature } from '../../../attestation/index.js';
import {
  EvidenceProviderError,
  GramineSgxPlatform,
  SNP_CERT_GUIDS,
  SevSnpConfigfsPlatform,
  encodeSnpCertTable,
  parseSgxQuote,
  parseSnpCertTable,
  type ProviderFs,
} from '../../../node/enclave/providers/index.js';
import type { TeePlatform } from '../../../node/enclave/platform.js';
import { sample, samplesAbsentMessage, samplesPresent } from '../attestation/samples.js';

async function providerCode(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EvidenceProviderError);
    return (err as EvidenceProviderError).code;
  }
  throw new Error('expected an EvidenceProviderError, nothing was thrown');
}

function errno(code: string, message = code): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const rd = (seed: string): string => createHash('sha512').update(seed).digest('hex');

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'cloister-providers-'));
});
afterEach(() => {
  rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// A temporary directory that behaves like /sys/kernel/config/tsm/report with the sev-guest
// provider (Documentation/ABI/testing/configfs-tsm): mkdir creates the attributes, writes to
// inblob/privlevel bump `generation`, reading outblob produces a report over the current inblob,
// reading auxblob returns the host's certificate table, rmdir removes the entry.
// Every file is a real file in the temporary directory; the provider reads and writes them.
// ---------------------------------------------------------------------------------------------

const MEASUREMENT = createHash('sha384').update('the node program').digest();
const chipKey = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
const FAKE_CERTS = [
  { guid: '63da758d-e664-4564-adc5-f4b93be8accd', der: new Uint8Array(randomBytes(300)) },
  { guid: '4ab7b379-bbac-4fe4-a02f-05aef327c782', der: new Uint8Array(randomBytes(200)) },
  { guid: 'c0b406a4-a803-4952-9743-3fb6014cd0ae', der: new Uint8Array(randomBytes(250)) },
];

interface TsmEntry {
  generation: number;
  inblob: Uint8Array;
  privlevel?: number;
}

class FakeConfigfsTsm implements ProviderFs {
  readonly entries = new Map<string, TsmEntry>();
  readonly created: string[] = [];
  provider = 'sev_guest';
  privlevelFloor = 0;
  auxblob: Uint8Array | undefined = encodeSnpCertTable(FAKE_CERTS);
  manifestblob: Uint8Array | undefined;
  /** Runs just before outblob is produced (e.g. another process writing inblob). */
  beforeOutblob: ((entry: string) => Promise<void>) | undefined;
  /** Replaces the produced report. */
  outblobFor: ((inblob: Uint8Array) => Uint8Array) | undefined;

  constructor(readonly base: string) {}

  #entry(path: string): [string, TsmEntry | undefined] {
    const dir = dirname(path);
    return [dir, this.entries.get(dir)];
  }

  async #attr(entry: string, name: string, value: string | Uint8Array): Promise<void> {
    await fsp.writeFile(join(entry, name), value);
  }

  async #bump(entry: string, e: TsmEntry): Promise<void> {
    e.generation++;
    await this.#attr(entry, 'generation', `${e.generation}\n`);
  }

  async mkdir(path: string): Promise<void> {
    await fsp.mkdir(path);
    if (dirname(path) !== this.base) return;
    const e: TsmEntry = { generation: 0, inblob: new Uint8Array(0) };
    this.entries.set(path, e);
    this.created.push(basename(path));
    await this.#attr(path, 'provider', `${this.provider}\n`);
    await this.#attr(path, 'generation', '0\n');
    await this.#attr(path, 'privlevel_floor', `${this.privlevelFloor}\n`);
    for (const name of ['inblob', 'outblob', 'auxblob', 'privlevel']) await this.#attr(path, name, '');
    if (this.manifestblob !== undefined) await this.#attr(path, 'manifestblob', '');
  }

  async rmdir(path: string): Promise<void> {
    if (this.entries.has(path)) {
      for (const f of await fsp.readdir(path)) await fsp.unlink(join(path, f));
      this.entries.delete(path);
    }
    await fsp.rmdir(path);
  }

  async writeFile(path: string, data: Uint8Array): Promise<void> {
    const [entry, e] = this.#entry(path);
    if (e === undefined) throw errno('ENOENT');
    const name = basename(path);
    if (name === 'inblob') {
      if (data.length > 64) throw errno('EINVAL');
      e.inblob = new Uint8Array(data);
    } else if (name === 'privlevel') {
      const level = Number(Buffer.from(data).toString());
      if (!Number.isInteger(level) || level < this.privlevelFloor || level > 3) throw errno('EINVAL');
      e.privlevel = level;
    } else throw errno('EACCES'); // read-only attributes
    await fsp.writeFile(path, data);
    await this.#bump(entry, e);
  }

  async readFile(path: string): Promise<Uint8Array> {
    const [entry, e] = this.#entry(path);
    const name = basename(path);
    if (e !== undefined && name === 'outblob') {
      await this.beforeOutblob?.(entry);
      const rdata = new Uint8Array(64);
      rdata.set(e.inblob);
      const report = this.outblobFor?.(e.inblob) ?? this.#report(rdata, e.privlevel ?? this.privlevelFloor);
      await this.#attr(entry, 'outblob', report);
    } else if (e !== undefined && name === 'auxblob') {
      if (this.auxblob === undefined) {
        await fsp.unlink(path).catch(() => undefined);
      } else await this.#attr(entry, 'auxblob', this.auxblob);
    } else if (e !== undefined && name === 'manifestblob' && this.manifestblob !== undefined) {
      await this.#attr(entry, 'manifestblob', this.manifestblob);
    }
    return new Uint8Array(await fsp.readFile(path));
  }

  stat(path: string): Promise<{ isDirectory(): boolean }> {
    return fsp.stat(path);
  }

  #report(reportData: Uint8Array, vmpl: number): Uint8Array {
    const unsigned = encodeSnpReport({
      version: 3,
      cpuid: { family: 0x19, model: 0x11, stepping: 1 },
      vmpl,
      reportData,
      measurement: MEASUREMENT,
      chipId: new Uint8Array(64).fill(7),
      reportedTcb: { bootloader: 10, tee: 0, snp: 23, microcode: 84 },
      signerInfo: { signingKey: 'vcek' },
    });
    return withSnpSignature(unsigned, new Uint8Array(sign('sha384', signedPart(unsigned), { key: chipKey, dsaEncoding: 'ieee-p1363' })));
  }
}

describe('SevSnpConfigfsPlatform (configfs-tsm)', () => {
  let base: string;
  let fake: FakeConfigfsTsm;
  beforeEach(async () => {
    base = join(tmp, 'tsm', 'report');
    await fsp.mkdir(base, { recursive: true });
    fake = new FakeConfigfsTsm(base);
  });

  it('runs the protocol: mkdir, inblob, outblob/provider/auxblob, generation check, rmdir', async () => {
    const snp = new SevSnpConfigfsPlatform(base, { fs: fake });
    const platform: TeePlatform = snp; // same interface as the virtual platform
    expect(snp.measurement).toBe('');
    const data = rd('node-1');
    const r = await snp.getReport(data);
    expect(r.platform).toBe('sev-snp');
    expect(r.measurement).toBe(hexOf(MEASUREMENT));
    expect(platform.measurement).toBe(hexOf(MEASUREMENT));
    expect(r.provider).toBe('sev_guest');
    expect(r.generation).toBe(1);
    const parsed = parseSnpReport(r.evidence);
    expect(hexOf(parsed.reportData)).toBe(data);
    expect(r.report).toEqual({ version: 3, vmpl: 0, signingKey: 'vcek', chipId: '07'.repeat(64), reportedTcb: hexOf(parsed.reportedTcb.raw) });
    expect(r.certificates.map((c) => c.kind)).toEqual(['vcek', 'ask', 'ark']);
    expect(r.certificates[0]!.der).toEqual(FAKE_CERTS[0]!.der);
    expect(r.auxblob).toEqual(fake.auxblob);
    expect(r.manifestblob).toBeUndefined();
    // one entry was created and removed again
    expect(fake.created).toHaveLength(1);
    expect(fake.created[0]).toMatch(/^cloister-\d+-[0-9a-f]{16}$/);
    expect(await fsp.readdir(base)).toEqual([]);
  });

  it('writes privlevel when asked, and checks it against privlevel_floor and the report VMPL', async () => {
    const r = await new SevSnpConfigfsPlatform(base, { fs: fake, privlevel: 2 }).getReport(rd('x'));
    expect(r.report.vmpl).toBe(2);
    expect(r.generation).toBe(2); // privlevel + inblob
    fake.privlevelFloor = 3;
    expect(await providerCode(() => new SevSnpConfigfsPlatform(base, { fs: fake, privlevel: 2 }).getReport(rd('x')))).toBe('INVALID_ARGUMENT');
    fake.privlevelFloor = 0;
    fake.outblobFor = (inblob) => encodeSnpReport({ reportData: inblob, measurement: MEASUREMENT, vmpl: 0 });
    expect(await providerCode(() => new SevSnpConfigfsPlatform(base, { fs: fake, privlevel: 1 }).getReport(rd('x')))).toBe('REPORT_DATA_MISMATCH');
    expect(() => new SevSnpConfigfsPlatform(base, { privlevel: 4 })).toThrow(EvidenceProviderError);
    expect(await fsp.readdir(base)).toEqual([]);
  });

  it('detects another writer between our write and read (generation mismatch), and still removes the entry', async () => {
    fake.beforeOutblob = async (entry) => {
      await fake.writeFile(join(entry, 'inblob'), new Uint8Array(64).fill(0xee)); // a racing writer
    };
    const code = await providerCode(() => new SevSnpConfigfsPlatform(base, { fs: fake }).getReport(rd('mine')));
    expect(code).toBe('GENERATION_MISMATCH');
    expect(await fsp.readdir(base)).toEqual([]);
  });

  it('refuses another TSM provider (e.g. tdx_guest)', async () => {
    fake.provider = 'tdx_guest';
    expect(await providerCode(() => new SevSnpConfigfsPlatform(base, { fs: fake }).getReport(rd('x')))).toBe('PROVIDER_MISMATCH');
  });

  it('refuses a report that does not carry our report data, or is not an SNP report', async () => {
    fake.outblobFor = () => encodeSnpReport({ reportData: new Uint8Array(64).fill(1), measurement: MEASUREMENT });
    expect(await providerCode(() => new SevSnpConfigfsPlatform(base, { fs: fake }).getReport(rd('x')))).toBe('REPORT_DATA_MISMATCH');
    fake.outblobFor = () => new Uint8Array(100);
    expect(await providerCode(() => new SevSnpConfigfsPlatform(base, { fs: fake }).getReport(rd('x')))).toBe('REPORT_MALFORMED');
    fake.outblobFor = undefined;
    fake.auxblob = new Uint8Array(10); // no terminator
    expect(await providerCode(() => new SevSnpConfigfsPlatform(base, { fs: fake }).getReport(rd('x')))).toBe('REPORT_MALFORMED');
  });

  it('works without auxblob (no certificates from the host) and returns manifestblob when present', async () => {
    fake.auxblob = undefined;
    fake.manifestblob = new Uint8Array([1, 2, 3]);
    const r = await new SevSnpConfigfsPlatform(base, { fs: fake }).getReport(rd('x'));
    expect(r.certificates).toEqual([]);
    expect(r.auxblob).toBeUndefined();
    expect(r.manifestblob).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('says clearly when the interface is missing, is not configfs-tsm, or is not permitted', async () => {
    const missing = new SevSnpConfigfsPlatform(join(tmp, 'no', 'such', 'dir')); // real node:fs
    const err = await missing.getReport(rd('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EvidenceProviderError);
    expect((err as EvidenceProviderError).code).toBe('INTERFACE_UNAVAILABLE');
    expect((err as EvidenceProviderError).message).toMatch(/configfs/);
    // an ordinary directory: mkdir works but the kernel creates no attributes
    const plain = join(tmp, 'plain');
    await fsp.mkdir(plain);
    expect(await providerCode(() => new SevSnpConfigfsPlatform(plain).getReport(rd('x')))).toBe('INTERFACE_UNAVAILABLE');
    expect(await fsp.readdir(plain)).toEqual([]);
    // a file where the directory should be
    await fsp.writeFile(join(tmp, 'file'), 'x');
    expect(await providerCode(() => new SevSnpConfigfsPlatform(join(tmp, 'file')).getReport(rd('x')))).toBe('INTERFACE_UNAVAILABLE');
    // no TSM provider registered: the kernel answers ENXIO
    const noProvider: ProviderFs = { ...wrap(fake), readFile: (p) => (basename(p) === 'outblob' ? Promise.reject(errno('ENXIO')) : fake.readFile(p)) };
    expect(await providerCode(() => new SevSnpConfigfsPlatform(base, { fs: noProvider }).getReport(rd('x')))).toBe('INTERFACE_UNAVAILABLE');
    const denied: ProviderFs = { ...wrap(fake), mkdir: () => Promise.reject(errno('EACCES')) };
    expect(await providerCode(() => new SevSnpConfigfsPlatform(base, { fs: denied }).getReport(rd('x')))).toBe('PERMISSION_DENIED');
    const eio: ProviderFs = { ...wrap(fake), readFile: (p) => (basename(p) === 'outblob' ? Promise.reject(errno('EIO')) : fake.readFile(p)) };
    expect(await providerCode(() => new SevSnpConfigfsPlatform(base, { fs: eio }).getReport(rd('x')))).toBe('IO_ERROR');
    expect(await fsp.readdir(base)).toEqual([]);
  });

  it('refuses report data that is not 64 bytes of hex', async () => {
    const snp = new SevSnpConfigfsPlatform(base, { fs: fake });
    for (const bad of ['', 'ab', 'zz'.repeat(64), '00'.repeat(65)]) expect(await providerCode(() => snp.getReport(bad))).toBe('INVALID_ARGUMENT');
    expect(fake.created).toEqual([]);
  });

  it('probe() learns the measurement', async () => {
    const snp = new SevSnpConfigfsPlatform(base, { fs: fake });
    expect(await snp.probe()).toEqual({ measurement: hexOf(MEASUREMENT), provider: 'sev_guest' });
    expect(snp.measurement).toBe(hexOf(MEASUREMENT));
  });
});

function wrap(f: ProviderFs): ProviderFs {
  return {
    mkdir: (p) => f.mkdir(p),
    rmdir: (p) => f.rmdir(p),
    readFile: (p) => f.readFile(p),
    writeFile: (p, d) => f.writeFile(p, d),
    stat: (p) => f.stat(p),
  };
}

describe('SEV-SNP certificate table (auxblob)', () => {
  it('round-trips and names the GHCB GUIDs in either byte order', () => {
    const t = encodeSnpCertTable([...FAKE_CERTS, { guid: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1', der: new Uint8Array([9]) }]);
    expect(parseSnpCertTable(t).map((c) => c.kind)).toEqual(['vcek', 'ask', 'ark', 'vlek']);
    // mixed-endian spelling of the VCEK GUID
    const mixed = encodeSnpCertTable([{ guid: '8d75da63-64e6-6445-adc5-f4b93be8accd', der: new Uint8Array([1]) }]);
    expect(parseSnpCertTable(mixed)[0]).toMatchObject({ kind: 'vcek', guid: '63da758d-e664-4564-adc5-f4b93be8accd' });
    expect(parseSnpCertTable(encodeSnpCertTable([{ guid: '11111111-2222-3333-4444-555555555555', der: new Uint8Array([1]) }]))[0]!.kind).toBe('unknown');
    expect(parseSnpCertTable(new Uint8Array(24))).toEqual([]);
    expect(Object.values(SNP_CERT_GUIDS)).toContain('vcek');
  });

  it('refuses tables that point outside the blob or lack a terminator', () => {
    const t = encodeSnpCertTable(FAKE_CERTS);
    for (const bad of [t.subarray(0, 30), t.subarray(0, t.length - 1), new Uint8Array(23)]) {
      expect(() => parseSnpCertTable(bad)).toThrow(EvidenceProviderError);
    }
    const overlap = new Uint8Array(t);
    new DataView(overlap.buffer).setUint32(16, 0, true); // first cert at offset 0 (inside the table)
    expect(() => parseSnpCertTable(overlap)).toThrow(EvidenceProviderError);
  });
});

// ---------------------------------------------------------------------------------------------
// A temporary directory that behaves like Gramine's /dev/attestation: attestation_type says
// "dcap", user_report_data takes 64 bytes, reading quote produces a DCAP v3 quote whose
// REPORTDATA is the last user_report_data. Files are real files in the temporary directory.
// ---------------------------------------------------------------------------------------------

const MRENCLAVE = createHash('sha256').update('enclave').digest();
const MRSIGNER = createHash('sha256').update('signer').digest();

function fakeQuote(reportData: Uint8Array, opts: { version?: number; debug?: boolean; trailing?: number } = {}): Uint8Array {
  const sig = randomBytes(64);
  const q = new Uint8Array(436 + sig.length + (opts.trailing ?? 0));
  const v = new DataView(q.buffer);
  v.setUint16(0, opts.version ?? 3, true);
  v.setUint16(2, 2, true); // ECDSA-256-with-P-256
  v.setUint16(8, 5, true); // QE SVN
  v.setUint16(10, 10, true); // PCE SVN
  q[96] = opts.debug ? 0x07 : 0x05; // ATTRIBUTES.flags: INIT | MODE64 (| DEBUG)
  q.set(MRENCLAVE, 112);
  q.set(MRSIGNER, 176);
  v.setUint16(304, 1, true);
  v.setUint16(306, 2, true);
  q.set(reportData, 368);
  v.setUint32(432, sig.length, true);
  q.set(sig, 436);
  return q;
}

class FakeGramine implements ProviderFs {
  reportData = new Uint8Array(64);
  quoteFor: ((reportData: Uint8Array) => Uint8Array) | undefined;
  beforeQuote: (() => Promise<void>) | undefined;
  quotes = 0;
  constructor(
    readonly dir: string,
    readonly attestationType = 'dcap',
  ) {}
  async init(): Promise<this> {
    await fsp.mkdir(this.dir, { recursive: true });
    await fsp.writeFile(join(this.dir, 'attestation_type'), this.attestationType);
    await fsp.writeFile(join(this.dir, 'user_report_data'), new Uint8Array(64));
    await fsp.writeFile(join(this.dir, 'quote'), '');
    return this;
  }
  mkdir(): Promise<void> {
    return Promise.reject(errno('EPERM'));
  }
  rmdir(): Promise<void> {
    return Promise.reject(errno('EPERM'));
  }
  async writeFile(path: string, data: Uint8Array): Promise<void> {
    if (basename(path) !== 'user_report_data') throw errno('EACCES');
    if (data.length !== 64) throw errno('EINVAL');
    this.reportData = new Uint8Array(data);
    await fsp.writeFile(path, data);
  }
  async readFile(path: string): Promise<Uint8Array> {
    if (basename(path) === 'quote') {
      await this.beforeQuote?.();
      this.quotes++;
      await fsp.writeFile(path, this.quoteFor?.(this.reportData) ?? fakeQuote(this.reportData));
    }
    return new Uint8Array(await fsp.readFile(path));
  }
  stat(path: string): Promise<{ isDirectory(): boolean }> {
    return fsp.stat(path);
  }
}

describe('GramineSgxPlatform (/dev/attestation)', () => {
  it('writes user_report_data, reads the quote and takes MRENCLAVE from it', async () => {
    const fake = await new FakeGramine(join(tmp, 'dev', 'attestation')).init();
    const sgx = new GramineSgxPlatform(fake.dir, { fs: fake });
    const platform: TeePlatform = sgx;
    const data = rd('node-1');
    const r = await sgx.getReport(data);
    expect(r.platform).toBe('sgx');
    expect(r.measurement).toBe(hexOf(MRENCLAVE));
    expect(platform.measurement).toBe(hexOf(MRENCLAVE));
    expect(r.attestationType).toBe('dcap');
    expect(r.quote).toMatchObject({ version: 3, mrsigner: hexOf(MRSIGNER), isvProdId: 1, isvSvn: 2, debug: false, reportData: data });
    expect(hexOf(await fsp.readFile(join(fake.dir, 'user_report_data')))).toBe(data);
    expect(r.evidence).toEqual(new Uint8Array(await fsp.readFile(join(fake.dir, 'quote'))));
  });

  it('serialises concurrent requests so each quote carries its own report data', async () => {
    const fake = await new FakeGramine(join(tmp, 'att')).init();
    fake.beforeQuote = () => new Promise((resolve) => setTimeout(resolve, 5));
    const sgx = new GramineSgxPlatform(fake.dir, { fs: fake });
    const datas = ['a', 'b', 'c', 'd'].map(rd);
    const rs = await Promise.all(datas.map((d) => sgx.getReport(d)));
    expect(rs.map((r) => r.quote.reportData)).toEqual(datas);
  });

  it('refuses a quote over other report data (another writer, or a stale quote) and malformed quotes', async () => {
    const fake = await new FakeGramine(join(tmp, 'att')).init();
    const sgx = new GramineSgxPlatform(fake.dir, { fs: fake });
    // another component of the enclave writes user_report_data between our write and our read
    fake.beforeQuote = async () => void (fake.reportData = new Uint8Array(64).fill(9));
    expect(await providerCode(() => sgx.getReport(rd('x')))).toBe('REPORT_DATA_MISMATCH');
    fake.beforeQuote = undefined;
    for (const q of [new Uint8Array(100), fakeQuote(new Uint8Array(64), { version: 5 }), fakeQuote(new Uint8Array(64)).subarray(0, 470)]) {
      fake.quoteFor = () => q;
      expect(await providerCode(() => sgx.getReport(rd('x')))).toBe('REPORT_MALFORMED');
    }
    fake.quoteFor = (d) => fakeQuote(d, { trailing: 32, debug: true });
    const r = await sgx.getReport(rd('x'));
    expect(r.evidence.length).toBe(436 + 64); // zero padding after the quote dropped
    expect(r.quote.debug).toBe(true);
  });

  it('a pre-populated directory with a stale quote (plain node:fs, no Gramine behind it) is refused', async () => {
    const dir = join(tmp, 'stale');
    await fsp.mkdir(dir);
    await fsp.writeFile(join(dir, 'attestation_type'), 'dcap\n');
    await fsp.writeFile(join(dir, 'quote'), fakeQuote(new Uint8Array(64).fill(3)));
    expect(await providerCode(() => new GramineSgxPlatform(dir).getReport(rd('x')))).toBe('REPORT_DATA_MISMATCH');
    expect(hexOf(await fsp.readFile(join(dir, 'user_report_data')))).toBe(rd('x')); // the protocol's write happened
  });

  it('requires attestation_type "dcap"', async () => {
    for (const type of ['none', 'epid']) {
      const fake = await new FakeGramine(join(tmp, type), type).init();
      const err = await new GramineSgxPlatform(fake.dir, { fs: fake }).getReport(rd('x')).catch((e: unknown) => e);
      expect((err as EvidenceProviderError).code).toBe('UNSUPPORTED_ATTESTATION_TYPE');
      expect((err as Error).message).toMatch(/sgx\.remote_attestation = "dcap"/);
      expect(fake.quotes).toBe(0);
    }
  });

  it('says clearly when /dev/attestation is missing, and maps quote failures', async () => {
    const err = await new GramineSgxPlatform(join(tmp, 'nope')).getReport(rd('x')).catch((e: unknown) => e);
    expect((err as EvidenceProviderError).code).toBe('INTERFACE_UNAVAILABLE');
    expect((err as Error).message).toMatch(/gramine-sgx/);
    const fake = await new FakeGramine(join(tmp, 'att')).init();
    const failing: ProviderFs = { ...wrap(fake), readFile: (p) => (basename(p) === 'quote' ? Promise.reject(errno('EACCES')) : fake.readFile(p)) };
    expect(await providerCode(() => new GramineSgxPlatform(fake.dir, { fs: failing }).getReport(rd('x')))).toBe('IO_ERROR');
    expect(await providerCode(() => new GramineSgxPlatform(fake.dir, { fs: fake }).getReport('12'))).toBe('INVALID_ARGUMENT');
    expect((await new GramineSgxPlatform(fake.dir, { fs: fake }).probe()).measurement).toBe(hexOf(MRENCLAVE));
  });

  it.skipIf(!samplesPresent)(`the local quote parse reads MRENCLAVE of a real DCAP quote${samplesPresent ? '' : ` — SKIPPED: ${samplesAbsentMessage}`}`, () => {
    const q = parseSgxQuote(sample('maa/maa_sharedwus_signing_cert_enclave_quote.bin'));
    expect(q.mrenclave).toBe('b3cdb7c6d8da25088334d8864c06794f0cd7f505708abe44cc074c1e6ae0e283');
    expect(q.mrsigner).toBe('74ba5fba208571cf99e1f7158e6536a05bbb6ce7807eef8f6a97f64a7af64b83');
    expect(q.debug).toBe(true);
    expect(q.length).toBe(4600);
  });
});
