import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  REPORT_DATA_DOMAIN,
  checkReportData,
  createVirtualEvidence,
  generateVirtualRoot,
  reportDataFor,
  reportDataPreimage,
  verifyVirtualEvidence,
  type ReportDataInput,
} from '../../../attestation/index.js';
import { codeOf } from './helpers.js';
import { hex } from './samples.js';

const base: ReportDataInput = {
  publicKeys: { vote: 'aa'.repeat(32), encryption: 'bb'.repeat(32) },
  chainId: 'cloister-devnet',
  nodeId: 'node-1',
  freshness: 'nonce-0001',
};

describe('report data binding', () => {
  it('is SHA-512 over the documented canonical JSON with the domain tag', () => {
    const rd = reportDataFor(base);
    expect(rd.length).toBe(64);
    const expectedText =
      `{"chainId":"cloister-devnet","domain":"${REPORT_DATA_DOMAIN}","freshness":"nonce-0001","nodeId":"node-1",` +
      `"publicKeys":{"encryption":"${'bb'.repeat(32)}","vote":"${'aa'.repeat(32)}"}}`;
    expect(new TextDecoder().decode(reportDataPreimage(base))).toBe(expectedText);
    expect(hex(rd)).toBe(createHash('sha512').update(expectedText).digest('hex'));
  });

  it('is deterministic and independent of key order and hex case', () => {
    const reordered = { ...base, publicKeys: { encryption: 'BB'.repeat(32), vote: 'aa'.repeat(32) } };
    expect(hex(reportDataFor(reordered))).toBe(hex(reportDataFor(base)));
  });

  it('changing any input changes the report data', () => {
    const ref = hex(reportDataFor(base));
    const variants: ReportDataInput[] = [
      { ...base, chainId: 'cloister-mainnet' },
      { ...base, nodeId: 'node-2' },
      { ...base, freshness: 'nonce-0002' },
      { ...base, publicKeys: { ...base.publicKeys, vote: 'aa'.repeat(31) + 'ab' } },
      { ...base, publicKeys: { vote: 'aa'.repeat(32) } },
      { ...base, publicKeys: { ...base.publicKeys, extra: '00' } },
      { ...base, publicKeys: { voter: 'aa'.repeat(32), encryption: 'bb'.repeat(32) } },
      // shifting text between fields must not collide
      { ...base, chainId: 'cloister-devnetn', nodeId: 'ode-1' },
    ];
    const seen = new Set([ref]);
    for (const v of variants) {
      const rd = hex(reportDataFor(v));
      expect(seen.has(rd), JSON.stringify(v)).toBe(false);
      seen.add(rd);
    }
  });

  it('checkReportData accepts the bound value and detects replay for another key/node/chain/freshness', () => {
    const root = generateVirtualRoot();
    const rd = reportDataFor(base);
    const evidence = createVirtualEvidence({ rootPrivateKeyPem: root.privateKeyPem, measurement: new Uint8Array(48), reportData: rd });
    const result = verifyVirtualEvidence(evidence, { trustedRoots: [root.publicKeyPem], now: new Date(0) });
    expect(() => checkReportData(result, rd)).not.toThrow();
    expect(() => checkReportData(result, hex(rd))).not.toThrow();
    for (const other of [
      { ...base, freshness: 'nonce-0002' },
      { ...base, nodeId: 'node-9' },
      { ...base, chainId: 'other-chain' },
      { ...base, publicKeys: { ...base.publicKeys, vote: 'cc'.repeat(32) } },
    ]) {
      expect(codeOf(() => checkReportData(result, reportDataFor(other)))).toBe('REPORT_DATA_MISMATCH');
    }
  });

  it('validates its inputs', () => {
    expect(codeOf(() => reportDataFor({ ...base, publicKeys: {} }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => reportDataFor({ ...base, publicKeys: { vote: 'xyz' } }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => reportDataFor({ ...base, publicKeys: { vote: '' } }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => reportDataFor({ ...base, publicKeys: { '': 'aa' } }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => reportDataFor({ ...base, chainId: '' }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => reportDataFor({ ...base, freshness: 5 as unknown as string }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => reportDataFor(null as unknown as ReportDataInput))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => checkReportData({ reportData: '00'.repeat(64) }, new Uint8Array(32)))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => checkReportData({ reportData: '00'.repeat(63) }, new Uint8Array(64)))).toBe('REPORT_DATA_MISMATCH');
  });

  it('handles a "__proto__" key name as data', () => {
    const keys = JSON.parse('{"__proto__":"aa"}') as Record<string, string>;
    const text = new TextDecoder().decode(reportDataPreimage({ ...base, publicKeys: keys }));
    expect(text).toContain('"publicKeys":{"__proto__":"aa"}');
  });
});
