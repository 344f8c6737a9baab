import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../../attestation/errors.js';
import {
  INTEL_SGX_ROOT_CA_PEM,
  INTEL_SGX_ROOT_KEY_ID,
  INTEL_SGX_ROOT_PUBLIC_KEY_PEM,
  isDcapEvidence,
  parseDcapQuote,
  unwrapDcapInput,
  verifySgxQuote,
  verifySgxQuoteDetailed,
  type SgxCollateral,
} from '../../../attestation/sgx/index.js';
import { codeOf } from './helpers.js';
import { hex, sample, sampleText, samplesAbsentMessage, samplesPresent } from './samples.js';
import { makeRoot, spkiPem } from './sgx-fixtures.js';

/**
 * Intel DCAP verifier on the published samples (../shared/attestation-samples,
 * SOURCES.md §2). Expected values are those SOURCES.md records.
 */

interface Expected {
  file: string;
  platform: 'sgx' | 'tdx';
  container: 'raw' | 'hex' | 'azure-json';
  openEnclaveHeader?: boolean;
  measurement: string;
  mrSigner?: string;
  isvProdId?: number;
  isvSvn?: number;
  attributes?: string;
  debug: boolean;
  reportData: string;
  qe: { mrEnclave?: string; mrSigner?: string; isvProdId?: number; isvSvn: number };
  pck: { fmspc: string; pceId: string; pceSvn: number; cpuSvn?: string; tcbComponents?: number[]; sgxType?: string; issuer: string };
  header?: { qeSvn: number; pceSvn: number; length: number };
  validity: { notBefore: string; notAfter: string };
}

const QE_MRSIGNER = '8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff';
const PLATFORM = 'Intel SGX PCK Platform CA';
const PROCESSOR = 'Intel SGX PCK Processor CA';

const SAMPLES: Expected[] = [
  {
    file: 'intel/sgx/trustee_occlum_quote_v3.dat',
    platform: 'sgx',
    container: 'raw',
    measurement: '8f173e4613ff05c52aaf04162d234edae8c9977eae47eb2299ae16a553011c68',
    mrSigner: '83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e',
    isvProdId: 0,
    isvSvn: 0,
    attributes: '0700000000000000e700000000000000',
    debug: true,
    reportData: '74657374' + '00'.repeat(60),
    qe: { mrEnclave: '8ce58685be36e46187c233c7e99ed6fe75dbb33f7567ada217b077ecd8cf82f9', mrSigner: QE_MRSIGNER, isvSvn: 8 },
    pck: { fmspc: '00606a000000', pceId: '0000', pceSvn: 11, cpuSvn: '04040303ffff00000000000000000000', tcbComponents: [4, 4, 3, 3, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], sgxType: 'scalable', issuer: PLATFORM },
    header: { qeSvn: 8, pceSvn: 13, length: 4733 },
    validity: { notBefore: '2023-04-26T15:35:16.000Z', notAfter: '2030-04-26T15:35:16.000Z' },
  },
  {
    file: 'intel/sgx/automata_quote_sgx_v3.bin',
    platform: 'sgx',
    container: 'raw',
    measurement: 'a39d532e6ac9fe8ad9418851bbe26e1dee7408006505fce8580b511b97e704b4',
    mrSigner: '9affcfae47b848ec2caf1c49b4b283531e1cc425f93582b36806e52a43d78d1a',
    isvProdId: 0,
    isvSvn: 0,
    attributes: '0700000000000000ff02000000000000',
    debug: true,
    reportData: '0000000000000000000000000000000000000000000000000000000000000003c0d8928bbe2b5cee5253a3ccff2fb0a21e4f99adb1c972f1c4796423275e0fff',
    qe: { mrEnclave: '96b347a64e5a045e27369c26e6dcda51fd7c850e9b3a3a79e718f43261dee1e4', mrSigner: QE_MRSIGNER, isvSvn: 10 },
    pck: { fmspc: '00a067110000', pceId: '0000', pceSvn: 13, cpuSvn: '0b0b0202ff0100000000000000000000', tcbComponents: [11, 11, 2, 2, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], sgxType: 'standard', issuer: PROCESSOR },
    header: { qeSvn: 10, pceSvn: 15, length: 4600 },
    validity: { notBefore: '2024-08-09T17:14:09.000Z', notAfter: '2031-08-09T17:14:09.000Z' },
  },
  {
    file: 'intel/sgx/automata_quotev3.hex',
    platform: 'sgx',
    container: 'hex',
    measurement: 'a4f45c39dac622cb1dd32ddb35a52ec92db41d0fa88a1c911c49e59c534f61cd',
    mrSigner: '8f2dbc0f9c5d3378d596974b2deed1f93223cc49242899f83809bcc92546132c',
    isvProdId: 0,
    isvSvn: 0,
    attributes: '0500000000000000e700000000000000',
    debug: false,
    reportData: '00'.repeat(64),
    qe: { mrEnclave: '192aa50ce1c0cef03ccf89e7b5b16b0d7978f5c2b1edcf774d87702e8154d8bf', mrSigner: QE_MRSIGNER, isvSvn: 9 },
    pck: { fmspc: '00606a000000', pceId: '0000', pceSvn: 13, cpuSvn: '0e0e0303ffff01000000000000000000', tcbComponents: [14, 14, 3, 3, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], sgxType: 'scalable', issuer: PLATFORM },
    header: { qeSvn: 9, pceSvn: 14, length: 4734 },
    validity: { notBefore: '2024-03-07T15:01:04.000Z', notAfter: '2031-03-07T15:01:04.000Z' },
  },
  {
    file: 'intel/sgx/azsamples_intelsdk_enclave.info.release.json',
    platform: 'sgx',
    container: 'azure-json',
    measurement: 'd37d983a85d63fb49649610e2eba0930ecdbff6d113aca3ff3fc7261696c0134',
    mrSigner: 'feb995eb86c349ac98e5afbbb5732ca7376ec9979002702ea17ad476e0853a04',
    isvProdId: 1,
    isvSvn: 1,
    attributes: '05000000000000000700000000000000',
    debug: false,
    reportData: '7192385c3c0605de55bb9476ce1d90748190ecb32a8eed7f5207b30cf6a1fe89' + '00'.repeat(32),
    qe: { mrEnclave: '192aa50ce1c0cef03ccf89e7b5b16b0d7978f5c2b1edcf774d87702e8154d8bf', mrSigner: QE_MRSIGNER, isvSvn: 9 },
    pck: { fmspc: '00906ed50000', pceId: '0000', pceSvn: 13, cpuSvn: '1414020401800e000000000000000000', tcbComponents: [20, 20, 2, 4, 1, 128, 14, 0, 0, 0, 0, 0, 0, 0, 0, 0], sgxType: 'standard', issuer: PROCESSOR },
    header: { qeSvn: 9, pceSvn: 14, length: 4600 },
    validity: { notBefore: '2023-02-27T19:17:10.000Z', notAfter: '2030-02-27T19:17:10.000Z' },
  },
  {
    file: 'intel/sgx/azsamples_oesdk_enclave.info.release.json',
    platform: 'sgx',
    container: 'azure-json',
    openEnclaveHeader: true,
    measurement: '4d62dedf3296fb3e7794b5b57bde276c98d11e79b4f86665aa32d4649f9ab1d8',
    mrSigner: '62ba6bcab59700c340bdbcd36bf74c6e0d6892cdf91671dca93bcbfff81ef9f2',
    isvProdId: 1,
    isvSvn: 1,
    attributes: '05000000000000000700000000000000',
    debug: false,
    reportData: 'f236d4f7aa4ef65fe93a9bad952cbfc7356d2d4cf3ba3e675d4b1a95f8448633' + '00'.repeat(32),
    qe: { mrEnclave: '60d85af28be8d1c40a08d98b009d5f8acc1384a385cf460800e478791d1a979c', mrSigner: QE_MRSIGNER, isvSvn: 5 },
    pck: { fmspc: '00906ed50000', pceId: '0000', pceSvn: 10, cpuSvn: '11110204018006000000000000000000', tcbComponents: [17, 17, 2, 4, 1, 128, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0], sgxType: 'standard', issuer: PROCESSOR },
    header: { qeSvn: 5, pceSvn: 10, length: 4584 },
    validity: { notBefore: '2021-02-22T17:27:43.000Z', notAfter: '2028-02-22T17:27:43.000Z' },
  },
  {
    file: 'maa/maa_sharedwus_signing_cert_enclave_quote.bin',
    platform: 'sgx',
    container: 'raw',
    measurement: 'b3cdb7c6d8da25088334d8864c06794f0cd7f505708abe44cc074c1e6ae0e283',
    mrSigner: '74ba5fba208571cf99e1f7158e6536a05bbb6ce7807eef8f6a97f64a7af64b83',
    isvProdId: 1,
    isvSvn: 1,
    debug: true,
    // REPORTDATA[0:32] = the kid bytes of the MAA signing key (base64 XxRc2vLh1E5FrsNawnRH3PzuFgqg3q7NvCdnjoJHBGE=)
    reportData: Buffer.from('XxRc2vLh1E5FrsNawnRH3PzuFgqg3q7NvCdnjoJHBGE=', 'base64').toString('hex') + '00'.repeat(32),
    qe: { mrSigner: QE_MRSIGNER, isvSvn: 7 },
    pck: { fmspc: '00906ed50000', pceId: '0000', pceSvn: 11, issuer: PROCESSOR },
    header: { qeSvn: 7, pceSvn: 12, length: 4600 },
    validity: { notBefore: '2022-05-09T20:55:43.000Z', notAfter: '2029-05-09T20:55:43.000Z' },
  },
  {
    file: 'intel/tdx/automata_tdx_quotev4.hex',
    platform: 'tdx',
    container: 'hex',
    measurement: '935be7742dd89c6a4df6dba8353d89041ae0f052beef993b1e7f4524d3bc57650df20e5582158352e1240b3f1fed55d8',
    debug: false,
    reportData: '00'.repeat(64),
    // the TD quoting enclave (not the SGX QE): ISVPRODID 2
    qe: { isvProdId: 2, isvSvn: 6 },
    pck: { fmspc: '00806f050000', pceId: '0000', pceSvn: 11, issuer: PLATFORM },
    validity: { notBefore: '2024-02-14T12:05:18.000Z', notAfter: '2031-02-14T12:05:18.000Z' },
  },
];

/** Inside every sample's PCK validity. */
const NOW = new Date('2025-06-01T00:00:00Z');

const collateral = {
  tcb00606a: () => sampleText('intel/collateral/tcbinfo_v3_sgx_fmspc_00606a000000.json'),
  tcb00a067: () => sampleText('intel/collateral/tcbinfo_v3_sgx_fmspc_00A067110000.json'),
  qeIdentity: () => sampleText('intel/collateral/qe_identity_v2_sgx_QE.json'),
  signing2025: () => sample('intel/roots/intel_sgx_tcb_signing_2025-2032.der'),
  signing2018: () => sample('intel/roots/intel_sgx_tcb_signing_2018-2025.der'),
  root2049: () => sample('intel/roots/intel_sgx_root_ca_2049.der'),
  rootCrl: () => sample('intel/roots/intel_sgx_root_ca_crl.der'),
  platformCrl: () => sample('intel/roots/intel_sgx_pck_platform_ca_crl.der'),
};

const at = (iso: string): Date => new Date(iso);
const plusMs = (iso: string, ms: number): Date => new Date(new Date(iso).getTime() + ms);

describe.skipIf(!samplesPresent)(`Intel DCAP verifier on the published samples${samplesPresent ? '' : ` — SKIPPED: ${samplesAbsentMessage}`}`, () => {
  describe('the embedded Intel SGX Root CA', () => {
    it('is the published root (fingerprint 44:A0:19:6B…) and its key is the pinned key', () => {
      const embedded = new X509Certificate(INTEL_SGX_ROOT_CA_PEM);
      expect(embedded.fingerprint256).toBe('44:A0:19:6B:2B:99:F8:89:B8:E1:49:E9:5B:80:7A:35:0E:74:24:96:43:99:E8:85:A7:CB:B8:CC:FA:B6:74:D3');
      const fromSample = new X509Certificate(`-----BEGIN CERTIFICATE-----\n${Buffer.from(collateral.root2049()).toString('base64')}\n-----END CERTIFICATE-----\n`);
      expect(embedded.raw.equals(fromSample.raw)).toBe(true);
      const spki = (k: ReturnType<typeof createPublicKey>): Buffer => k.export({ type: 'spki', format: 'der' });
      const pinned = spki(createPublicKey(INTEL_SGX_ROOT_PUBLIC_KEY_PEM));
      expect(spki(embedded.publicKey).equals(pinned)).toBe(true);
      expect(spki(new X509Certificate(sampleText('intel/roots/intel_sgx_root_ca_2033.pem')).publicKey).equals(pinned)).toBe(true);
      expect(createHash('sha256').update(pinned).digest('hex')).toBe(INTEL_SGX_ROOT_KEY_ID);
      expect(hex(pinned.subarray(-65))).toBe(
        '040ba9c4c0c0c86193a3fe23d6b02cda10a8bbd4e88e48b4458561a36e705525f567918e2edc88e40d860bd0cc4ee26aacc988e505a953558c453f6b0904ae7394',
      );
    });
  });

  describe.each(SAMPLES)('$file', (s) => {
    it('verifies with the expected fields (pinned Intel root, no collateral)', () => {
      const input = sample(s.file);
      const { result: r, details: d } = verifySgxQuoteDetailed(input, { now: NOW });
      expect(r.platform).toBe(s.platform);
      expect(r.measurement).toBe(s.measurement);
      expect(r.reportData).toBe(s.reportData);
      expect(r.debug).toBe(s.debug);
      expect(r.signingKey).toBe('pck');
      expect(r.rootKeyId).toBe(INTEL_SGX_ROOT_KEY_ID);
      expect(r.evidenceDigest).toBe(createHash('sha256').update(input).digest('hex'));
      expect(r.validity).toEqual(s.validity);
      expect(r.tcb.status).toBeUndefined();
      expect(r.chipId).toMatch(/^[0-9a-f]{32}$/);
      expect(r.chipId).toBe(d.pck.ppid);
      expect(d.container).toBe(s.container);
      expect(d.openEnclaveHeader).toBe(s.openEnclaveHeader ?? false);
      expect(d.qe).toMatchObject(s.qe);
      expect(d.pck).toMatchObject(s.pck);
      expect(r.tcb.components['pceSvn']).toBe(s.pck.pceSvn);
      expect(r.tcb.components['qeSvn']).toBe(s.qe.isvSvn);
      if (s.platform === 'sgx') {
        expect(d.version).toBe(3);
        expect(d.enclave).toMatchObject({ mrEnclave: s.measurement, mrSigner: s.mrSigner, isvProdId: s.isvProdId, isvSvn: s.isvSvn });
        if (s.attributes !== undefined) expect(d.enclave?.attributes).toBe(s.attributes);
        expect(r.tcb.components).toMatchObject({ isvProdId: s.isvProdId, isvSvn: s.isvSvn });
        if (s.pck.tcbComponents !== undefined) {
          s.pck.tcbComponents.forEach((v, i) => expect(r.tcb.components[`cpuSvn${i}`]).toBe(v));
          expect(r.tcb.raw).toBe(s.pck.cpuSvn! + Buffer.from([s.pck.pceSvn, 0]).toString('hex'));
        }
      } else {
        expect(d.version).toBe(4);
        expect(d.td?.mrTd).toBe(s.measurement);
      }
      const quote = parseDcapQuote(unwrapDcapInput(input).quote);
      if (s.header !== undefined) {
        expect(quote.qeSvn).toBe(s.header.qeSvn);
        expect(quote.pceSvn).toBe(s.header.pceSvn);
        expect(quote.length).toBe(s.header.length);
      }
      expect(hex(quote.qeVendorId)).toBe('939a7233f79c4ca9940a0db3957f0607');
    });

    it('an expired PCK certificate fails after notAfter and passes inside validity', () => {
      const input = sample(s.file);
      expect(verifySgxQuote(input, { now: new Date(s.validity.notAfter) }).measurement).toBe(s.measurement);
      expect(verifySgxQuote(input, { now: new Date(s.validity.notBefore) }).measurement).toBe(s.measurement);
      expect(codeOf(() => verifySgxQuote(input, { now: plusMs(s.validity.notAfter, 1000) }))).toBe('EVIDENCE_EXPIRED');
      expect(codeOf(() => verifySgxQuote(input, { now: plusMs(s.validity.notBefore, -1000) }))).toBe('EVIDENCE_NOT_YET_VALID');
    });

    it('fails against another root', async () => {
      const other = await makeRoot('Not Intel');
      expect(codeOf(() => verifySgxQuote(sample(s.file), { now: NOW, trustedRoots: [spkiPem(other)] }))).toBe('UNTRUSTED_ROOT');
    });

    it('every changed byte of the quote (signed parts, signatures, keys, QE data, certificates) fails', () => {
      const quote = unwrapDcapInput(sample(s.file)).quote;
      const parsed = parseDcapQuote(quote);
      const certStart = parsed.length - parsed.certificationData.length;
      // Every byte before the certificates for the first sample, every 3rd for the TDX quote, every 5th for the
      // others; every 7th / 11th byte of the PEM chain. The offset rotates per sample (keeps the suite fast).
      const n = SAMPLES.indexOf(s);
      const [head, tail] = n === 0 ? [1, 7] : s.platform === 'tdx' ? [3, 7] : [5, 11];
      for (let i = 0; i < parsed.length; i += i < certStart ? head : tail) {
        const j = i + (n % (i < certStart ? head : tail));
        if (j >= parsed.length) break;
        const m = new Uint8Array(quote);
        m[j]! ^= 0x01;
        let thrown: unknown;
        try {
          verifySgxQuote(m, { now: NOW });
        } catch (err) {
          thrown = err;
        }
        if (!(thrown instanceof AttestationError)) throw new Error(`changed byte ${j} of ${s.file} was accepted or threw ${String(thrown)}`);
      }
    });
  });

  describe('collateral (TCB info, QE identity, CRLs): statuses as SOURCES.md records', () => {
    const withCollateral = (file: string, now: Date, c: SgxCollateral) => verifySgxQuoteDetailed(sample(file), { now, collateral: c });

    it('trustee_occlum_quote_v3: OutOfDate with its advisories, QE UpToDate', () => {
      const v = withCollateral('intel/sgx/trustee_occlum_quote_v3.dat', at('2025-08-20T00:00:00Z'), {
        tcbInfo: collateral.tcb00606a(),
        qeIdentity: collateral.qeIdentity(),
        tcbSigningChain: [collateral.signing2025(), collateral.root2049()],
      });
      expect(v.result.tcb.status).toBe('OutOfDate');
      expect(v.result.tcb.advisoryIds).toEqual([
        'INTEL-SA-00586',
        'INTEL-SA-00614',
        'INTEL-SA-00615',
        'INTEL-SA-00657',
        'INTEL-SA-00730',
        'INTEL-SA-00738',
        'INTEL-SA-00767',
        'INTEL-SA-00828',
        'INTEL-SA-00837',
        'INTEL-SA-00960',
      ]);
      expect(v.details.collateral).toMatchObject({ platformTcbStatus: 'OutOfDate', tcbDate: '2021-11-10T00:00:00Z', qeTcbStatus: 'UpToDate' });
      expect(v.result.validity).toEqual({ notBefore: '2025-08-15T05:08:18.000Z', notAfter: '2025-09-14T04:36:46.000Z' });
    });

    it('automata_quotev3.hex: SWHardeningNeeded, QE UpToDate (root CRL checked too)', () => {
      const v = withCollateral('intel/sgx/automata_quotev3.hex', at('2025-08-20T00:00:00Z'), {
        tcbInfo: collateral.tcb00606a(),
        qeIdentity: collateral.qeIdentity(),
        tcbSigningChain: [collateral.signing2025()],
      });
      expect(v.result.tcb.status).toBe('SWHardeningNeeded');
      expect(v.result.tcb.advisoryIds).toEqual(['INTEL-SA-00615']);
      expect(v.details.collateral.qeTcbStatus).toBe('UpToDate');
    });

    it('automata_quote_sgx_v3.bin: ConfigurationAndSWHardeningNeeded (TCB info of May 2025, either TCB Signing issue), QE UpToDate', () => {
      for (const signer of [collateral.signing2018(), collateral.signing2025()]) {
        const v = withCollateral('intel/sgx/automata_quote_sgx_v3.bin', at('2025-05-10T00:00:00Z'), { tcbInfo: collateral.tcb00a067(), tcbSigningChain: [signer] });
        expect(v.result.tcb.status).toBe('ConfigurationAndSWHardeningNeeded');
        expect(v.result.tcb.advisoryIds).toEqual(['INTEL-SA-00289', 'INTEL-SA-00615']);
        expect(v.details.collateral.tcbDate).toBe('2024-03-13T00:00:00Z');
      }
      const qe = withCollateral('intel/sgx/automata_quote_sgx_v3.bin', at('2025-08-20T00:00:00Z'), {
        qeIdentity: collateral.qeIdentity(),
        tcbSigningChain: [collateral.signing2025(), collateral.root2049()],
      });
      expect(qe.details.collateral).toMatchObject({ qeIdentity: 'evaluated', qeTcbStatus: 'UpToDate', tcbInfo: 'not-supplied' });
      expect(qe.result.tcb.status).toBeUndefined();
    });

    it('collateral of another FMSPC fails', () => {
      expect(
        codeOf(() =>
          withCollateral('intel/sgx/trustee_occlum_quote_v3.dat', at('2025-05-10T00:00:00Z'), { tcbInfo: collateral.tcb00a067(), tcbSigningChain: [collateral.signing2018()] }),
        ),
      ).toBe('COLLATERAL_MISSING');
      expect(
        codeOf(() =>
          withCollateral('intel/sgx/automata_quote_sgx_v3.bin', at('2025-08-20T00:00:00Z'), { tcbInfo: collateral.tcb00606a(), tcbSigningChain: [collateral.signing2025()] }),
        ),
      ).toBe('COLLATERAL_MISSING');
    });

    it('stale or not-yet-issued collateral fails; the expired TCB Signing issue fails after 2025-05-21', () => {
      const file = 'intel/sgx/trustee_occlum_quote_v3.dat';
      const c = { tcbInfo: collateral.tcb00606a(), tcbSigningChain: [collateral.signing2025()] };
      expect(codeOf(() => withCollateral(file, at('2025-09-14T05:08:19Z'), c))).toBe('EVIDENCE_EXPIRED');
      expect(codeOf(() => withCollateral(file, at('2025-08-15T05:08:17Z'), c))).toBe('EVIDENCE_NOT_YET_VALID');
      expect(codeOf(() => withCollateral(file, at('2025-08-20T00:00:00Z'), { ...c, tcbSigningChain: [collateral.signing2018()] }))).toBe('EVIDENCE_EXPIRED');
    });

    it('changed collateral text or a wrong signer fails', () => {
      const file = 'intel/sgx/trustee_occlum_quote_v3.dat';
      const now = at('2025-08-20T00:00:00Z');
      const tampered = collateral.tcb00606a().replace('"tcbStatus":"OutOfDate"', '"tcbStatus":"UpToDate"');
      expect(tampered).not.toBe(collateral.tcb00606a());
      expect(codeOf(() => withCollateral(file, now, { tcbInfo: tampered, tcbSigningChain: [collateral.signing2025()] }))).toBe('SIGNATURE_INVALID');
      const qe = collateral.qeIdentity().replace('"isvprodid":1', '"isvprodid":2');
      expect(codeOf(() => withCollateral(file, now, { qeIdentity: qe, tcbSigningChain: [collateral.signing2025()] }))).toBe('SIGNATURE_INVALID');
      expect(codeOf(() => withCollateral(file, now, { tcbInfo: collateral.tcb00606a(), tcbSigningChain: [sample('intel/roots/intel_sgx_pck_platform_ca.der')] }))).toBe('CHAIN_INVALID');
      expect(codeOf(() => withCollateral(file, now, { tcbInfo: collateral.tcb00606a() }))).toBe('COLLATERAL_MISSING');
    });

    it('CRLs: root CA CRL + PCK Platform CA CRL (July 2025) verify and do not revoke these platforms', () => {
      const crls = [collateral.rootCrl(), collateral.platformCrl()];
      for (const file of ['intel/sgx/trustee_occlum_quote_v3.dat', 'intel/sgx/automata_quotev3.hex', 'intel/tdx/automata_tdx_quotev4.hex']) {
        const v = withCollateral(file, at('2025-07-10T00:00:00Z'), { crls });
        expect(v.details.collateral.revocation).toBe('checked');
        expect(v.result.validity).toEqual({ notBefore: '2025-07-07T09:15:57.000Z', notAfter: '2025-08-06T09:15:57.000Z' });
      }
      // stale PCK CRL
      expect(codeOf(() => withCollateral('intel/sgx/trustee_occlum_quote_v3.dat', at('2025-08-20T00:00:00Z'), { crls }))).toBe('EVIDENCE_EXPIRED');
      // Processor-CA chain: the Platform CA CRL does not cover it
      expect(codeOf(() => withCollateral('intel/sgx/automata_quote_sgx_v3.bin', at('2025-07-10T00:00:00Z'), { crls }))).toBe('COLLATERAL_MISSING');
      // a changed byte in a CRL's signed part fails
      const forged = new Uint8Array(collateral.platformCrl());
      forged[200]! ^= 0x01;
      expect(['SIGNATURE_INVALID', 'INVALID_ARGUMENT']).toContain(codeOf(() => withCollateral('intel/sgx/trustee_occlum_quote_v3.dat', at('2025-07-10T00:00:00Z'), { crls: [crls[0]!, forged] })));
    });

    it('TDX: the SGX QE identity does not apply to the TD quoting enclave', () => {
      expect(
        codeOf(() =>
          withCollateral('intel/tdx/automata_tdx_quotev4.hex', at('2025-08-20T00:00:00Z'), { qeIdentity: collateral.qeIdentity(), tcbSigningChain: [collateral.signing2025()] }),
        ),
      ).toBe('COLLATERAL_MISSING');
    });
  });

  describe('input forms and wrappers', () => {
    it('the binary and hex forms of the same quote agree; the Azure JSON fields are cross-checked', () => {
      const hexText = sampleText('intel/sgx/automata_quotev3.hex');
      const bin = unwrapDcapInput(new TextEncoder().encode(hexText)).quote;
      expect(verifySgxQuote(bin, { now: NOW }).measurement).toBe(verifySgxQuote(new TextEncoder().encode(hexText.toUpperCase() + '\n'), { now: NOW }).measurement);
      const json = JSON.parse(sampleText('intel/sgx/azsamples_intelsdk_enclave.info.release.json')) as Record<string, unknown>;
      const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
      expect(codeOf(() => verifySgxQuote(enc({ ...json, MrEnclaveHex: '00'.repeat(32) }), { now: NOW }))).toBe('EVIDENCE_MALFORMED');
      expect(codeOf(() => verifySgxQuote(enc({ ...json, EnclaveHeldDataHex: '0102030405' }), { now: NOW }))).toBe('REPORT_DATA_MISMATCH');
      // REPORTDATA[0:32] == SHA-256(EnclaveHeldData) for both Azure samples
      for (const f of ['intel/sgx/azsamples_intelsdk_enclave.info.release.json', 'intel/sgx/azsamples_oesdk_enclave.info.release.json']) {
        const j = JSON.parse(sampleText(f)) as { EnclaveHeldDataHex: string };
        const r = verifySgxQuote(sample(f), { now: NOW });
        expect(r.reportData.slice(0, 64)).toBe(createHash('sha256').update(Buffer.from(j.EnclaveHeldDataHex, 'hex')).digest('hex'));
      }
    });

    it('isDcapEvidence recognises every DCAP sample form and no SEV-SNP sample', () => {
      for (const s of SAMPLES) expect(isDcapEvidence(sample(s.file)), s.file).toBe(true);
      for (const f of ['amd/snp/gsg_milan_v2_report.bin', 'amd/snp/virtee_milan_v2_report.hex', 'amd/snp/trustee_azure_milan_hcl_report.bin', 'maa/maa_sharedwus_sgx_token.jwt']) {
        expect(isDcapEvidence(sample(f)), f).toBe(false);
      }
    });

    it('the TDX sample is zero-padded to 8000 bytes; the quote occupies 4935', () => {
      const q = unwrapDcapInput(sample('intel/tdx/automata_tdx_quotev4.hex')).quote;
      expect(q.length).toBe(8000);
      expect(parseDcapQuote(q).length).toBe(4935);
    });
  });
});
