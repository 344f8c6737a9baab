import { beforeAll, describe, expect, it } from 'vitest';
import { AttestationError } from '../../../attestation/errors.js';
import { isDcapEvidence, parseDcapQuote, unwrapDcapInput, verifySgxQuote, verifySgxQuoteDetailed } from '../../../attestation/sgx/index.js';
import { sample, samplesPresent } from './samples.js';
import { attestationKey, buildQuote, chainPem, makeCrl, makePki, qeIdentityValue, signCollateral, tcbInfoValue, tdReportBody, type TestPki } from './sgx-fixtures.js';

/**
 * Fuzz: truncated, extended, mutated and random inputs (and junk collateral /
 * options) only ever throw AttestationError, and never INTERNAL_ERROR (that
 * would be a bug caught by the safety net).
 */

let seed = 0x5eed1234;
function rand(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
const randomBuf = (len: number): Uint8Array => Uint8Array.from({ length: len }, () => rand(256));
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const now = new Date('2025-01-15T00:00:00Z');

function onlyAttestationErrors(name: string, fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof AttestationError)) throw new Error(`${name} threw a non-AttestationError: ${String(err)}`);
    expect(err.code, `${name}: ${err.message}`).not.toBe('INTERNAL_ERROR');
  }
}

let pki: TestPki;
let valid: Uint8Array[];

beforeAll(async () => {
  pki = await makePki();
  const attKey = await attestationKey();
  const chain = chainPem(pki.pck, pki.platformCa, pki.root);
  valid = [
    buildQuote({ pck: pki.pck, chain, attestationKey: attKey }),
    buildQuote({ pck: pki.pck, chain, attestationKey: attKey, version: 4, tee: 'tdx', body: tdReportBody() }),
  ];
  if (samplesPresent) valid.push(sample('intel/sgx/trustee_occlum_quote_v3.dat'));
});

function inputs(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const q of valid) {
    for (let len = 0; len <= q.length; len += 1 + rand(61)) out.push(q.subarray(0, len));
    for (const extra of [1, 2, 3, 7, 100]) {
      out.push(new Uint8Array([...q, ...randomBuf(extra)]));
      out.push(new Uint8Array([...q, ...new Uint8Array(extra)]));
    }
    for (let i = 0; i < 150; i++) {
      const m = new Uint8Array(q);
      for (let k = 1 + rand(3); k > 0; k--) m[rand(m.length)] = rand(256);
      out.push(m);
    }
    // lengths inside the structure set to extreme values
    for (const [off, bytes] of [
      [432, [0xff, 0xff, 0xff, 0xff]],
      [432, [0, 0, 0, 0]],
      [1012, [0xff, 0xff]],
      [1046, [0xff, 0xff]],
      [1048, [0xff, 0xff, 0xff, 0x7f]],
      [632, [0xff, 0xff, 0xff, 0xff]],
      [764, [6, 0, 0xff, 0xff, 0xff, 0xff]],
    ] as Array<[number, number[]]>) {
      const m = new Uint8Array(q);
      if (off + bytes.length <= m.length) m.set(bytes, off);
      out.push(m);
    }
    const hex = Buffer.from(q).toString('hex');
    out.push(enc(hex.slice(0, -1)), enc(hex + 'g'), enc(`{"QuoteHex":"${hex.slice(0, 1000)}"}`), enc(`{"QuoteHex":${JSON.stringify(hex)},"MrEnclaveHex":5}`));
    const oe = new Uint8Array(16 + q.length);
    oe.set([1, 0, 0, 0, 2, 0, 0, 0], 0);
    new DataView(oe.buffer).setUint32(8, q.length + rand(3) - 1, true);
    oe.set(q, 16);
    out.push(oe, oe.subarray(0, 17));
  }
  for (const len of [0, 1, 2, 15, 16, 17, 47, 48, 49, 431, 432, 436, 1011, 1012, 1020, 1100, 4096, 5000]) {
    out.push(randomBuf(len));
    const shaped = randomBuf(len);
    if (len >= 48) shaped.set([[3, 4][rand(2)]!, 0, 2, 0, 0, 0, 0, 0], 0);
    if (len >= 48) shaped.set(Buffer.from('939a7233f79c4ca9940a0db3957f0607', 'hex'), 12);
    out.push(shaped);
    const oeShaped = randomBuf(len);
    if (len >= 16) oeShaped.set([1, 0, 0, 0, 2, 0, 0, 0], 0);
    out.push(oeShaped);
  }
  for (const s of ['{}', '[]', 'null', '{"QuoteHex":null}', '{"QuoteHex":""}', '{"QuoteHex":"00"}', '0x', 'ab', '  \n', '{' + '"a":['.repeat(3000)]) out.push(enc(s));
  out.push(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]));
  return out;
}

describe('fuzz: DCAP parsers and verifier throw only AttestationError', () => {
  it('over truncated, extended, mutated and random quotes', () => {
    const all = inputs();
    const roots = [pki.rootSpkiPem];
    for (const input of all) {
      expect(typeof isDcapEvidence(input)).toBe('boolean');
      onlyAttestationErrors('unwrapDcapInput', () => unwrapDcapInput(input));
      onlyAttestationErrors('parseDcapQuote', () => parseDcapQuote(input));
      onlyAttestationErrors('verifySgxQuote', () => verifySgxQuote(input, { now, trustedRoots: roots }));
      onlyAttestationErrors('verifySgxQuote (Intel root)', () => verifySgxQuote(input, { now }));
    }
    for (const junk of [undefined, null, 42, 'text', {}, [1, 2, 3], new ArrayBuffer(8)]) {
      onlyAttestationErrors('verifySgxQuote junk', () => verifySgxQuote(junk as never, { now }));
      onlyAttestationErrors('parseDcapQuote junk', () => parseDcapQuote(junk as never));
      onlyAttestationErrors('unwrapDcapInput junk', () => unwrapDcapInput(junk as never));
    }
  }, 60_000);

  it('over junk collateral and options', async () => {
    const q = valid[0]!;
    const roots = [pki.rootSpkiPem];
    const tcbInfo = signCollateral('tcbInfo', tcbInfoValue('00906ea10000', [{ components: new Array(16).fill(0), pceSvn: 0, status: 'UpToDate' }]), pki.tcbSigning);
    const qeIdentity = signCollateral('enclaveIdentity', qeIdentityValue([{ isvsvn: 0, status: 'UpToDate' }]), pki.tcbSigning);
    const crl = await makeCrl(pki.platformCa, ['01'], new Date('2025-01-01T00:00:00Z'), new Date('2025-02-01T00:00:00Z'));
    const texts: string[] = [
      '',
      '{}',
      'null',
      '{"tcbInfo":null,"signature":null}',
      '{"enclaveIdentity":[],"signature":"00"}',
      tcbInfo.slice(0, -3),
      tcbInfo.replace('"version":3', '"version":"3"'),
      tcbInfo.replace('"tcbLevels":[', '"tcbLevels":[1,'),
      tcbInfo.replace(/"svn":0/, '"svn":-1'),
      qeIdentity.replace('"isvprodid":1', '"isvprodid":1e400'),
      '{"tcbInfo":"\\u0000","signature":"' + '0'.repeat(128) + '"}',
    ];
    for (let i = 0; i < 40; i++) {
      const base = i % 2 ? tcbInfo : qeIdentity;
      const chars = [...base];
      chars[rand(chars.length)] = String.fromCharCode(rand(128));
      texts.push(chars.join(''), base.slice(0, rand(base.length)));
    }
    let i = 0;
    for (const text of texts) {
      for (const signing of [[pki.tcbSigning.der], [i++ % 2 ? randomBuf(50) : pki.tcbSigning.der.subarray(0, 100)], [enc('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')]]) {
        onlyAttestationErrors('tcbInfo', () => verifySgxQuoteDetailed(q, { now, trustedRoots: roots, collateral: { tcbInfo: text, tcbSigningChain: signing } }));
        onlyAttestationErrors('qeIdentity', () => verifySgxQuoteDetailed(q, { now, trustedRoots: roots, collateral: { qeIdentity: text, tcbSigningChain: signing } }));
      }
    }
    for (let len = 0; len <= crl.length; len += 1 + rand(17)) {
      onlyAttestationErrors('crl truncated', () => verifySgxQuote(q, { now, trustedRoots: roots, collateral: { crls: [crl.subarray(0, len)] } }));
    }
    for (let i = 0; i < 100; i++) {
      const m = new Uint8Array(crl);
      m[rand(m.length)] = rand(256);
      onlyAttestationErrors('crl mutated', () => verifySgxQuote(q, { now, trustedRoots: roots, collateral: { crls: [m, randomBuf(rand(40))] } }));
    }
    for (const opts of [undefined, null, 1, 'x', {}, { now: 1 }, { now, collateral: [] }, { now, collateral: { crls: 'x' } }, { now, trustedRoots: [1] }, { now, trustedRoots: new Array(100).fill(pki.rootSpkiPem) }]) {
      onlyAttestationErrors('options', () => verifySgxQuote(q, opts as never));
    }
  }, 60_000);
});
