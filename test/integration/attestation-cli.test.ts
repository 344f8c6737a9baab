import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createVirtualEvidence, generateVirtualRoot } from '../../attestation/index.js';
import { CloisterClient, RpcError } from '../../node/client/index.js';
import { cleanupNodes, runCli, startNode, tempDir } from '../helpers/dev-node.js';
import { samplesAbsentMessage, samplesDir, samplesPresent } from '../unit/attestation/samples.js';

afterAll(cleanupNodes);

const dir = tempDir();
const root = generateVirtualRoot();
const rootFile = join(dir, 'root.pem');
writeFileSync(rootFile, root.publicKeyPem);
const measurement = new Uint8Array(48).fill(7);
const evidence = createVirtualEvidence({ rootPrivateKeyPem: root.privateKeyPem, measurement, reportData: new Uint8Array(64).fill(1) });
const evidenceFile = join(dir, 'evidence.bin');
writeFileSync(evidenceFile, evidence);

interface VerifyJson {
  verified: boolean;
  accepted: boolean;
  platform: string | null;
  measurement: string | null;
  reportData: string | null;
  debug: boolean | null;
  tcb: unknown;
  error?: { code: string };
  challenge?: { nodeId: string; nonce: string };
  policy?: { accepted: boolean; reasons?: { code: string }[] };
}

async function verifyJson(args: string[]): Promise<{ code: number; out: VerifyJson }> {
  const r = await runCli(['attestation', 'verify', ...args, '--json']);
  return { code: r.code, out: JSON.parse(r.stdout) as VerifyJson };
}

describe('cloister attestation verify', () => {
  it('verifies virtual evidence against a declared root and prints the fields', async () => {
    const { code, out } = await verifyJson([evidenceFile, '--virtual-root', rootFile]);
    expect(code).toBe(0);
    expect(out).toMatchObject({ verified: true, platform: 'virtual', measurement: '07'.repeat(48), reportData: '01'.repeat(64), debug: false });
    expect(out.tcb).toBeTruthy();
  });

  it('fails with a code for an undeclared root, a changed byte, and unknown input', async () => {
    expect((await verifyJson([evidenceFile])).out.error?.code).toBe('UNTRUSTED_ROOT');
    const tampered = Buffer.from(evidence);
    const text = tampered.toString('utf8');
    // Flip one character of the base64 report inside the envelope.
    const at = text.indexOf('"report":"') + 40;
    tampered[at] = tampered[at] === 0x41 ? 0x42 : 0x41;
    const tamperedFile = join(dir, 'tampered.bin');
    writeFileSync(tamperedFile, tampered);
    const bad = await verifyJson([tamperedFile, '--virtual-root', rootFile]);
    expect(bad.code).toBe(1);
    expect(bad.out.verified).toBe(false);
    expect(bad.out.error?.code).toMatch(/SIGNATURE_INVALID|EVIDENCE_MALFORMED/);
    const junkFile = join(dir, 'junk.bin');
    writeFileSync(junkFile, 'not evidence at all');
    const junk = await runCli(['attestation', 'verify', junkFile]);
    expect(junk.code).toBe(1);
    expect(junk.stderr).toMatch(/UNSUPPORTED_FORMAT/);
  });

  it('never trusts a root that the evidence file names itself; a genesis gives roots and its policy', async () => {
    // Evidence made under an attacker's own root, wrapped like tee_getEvidence output with that root declared.
    const attacker = generateVirtualRoot();
    const forged = createVirtualEvidence({ rootPrivateKeyPem: attacker.privateKeyPem, measurement, reportData: new Uint8Array(64) });
    const wrappedFile = join(dir, 'wrapped.json');
    writeFileSync(wrappedFile, JSON.stringify({ platform: 'virtual', evidence: Buffer.from(forged).toString('base64'), virtualRoot: attacker.publicKeyPem }));
    const alone = await verifyJson([wrappedFile]);
    expect(alone.code).toBe(1);
    expect(alone.out.error?.code).toBe('UNTRUSTED_ROOT');
    const note = await runCli(['attestation', 'verify', wrappedFile]);
    expect(note.stderr).toMatch(/virtualRoot inside the evidence file is ignored/);

    const genesisFile = join(dir, 'genesis.json');
    const genesis = (measurements: string[]) => ({
      chainId: 'c',
      enclave: { measurements: { virtual: measurements }, virtualRoots: [root.publicKeyPem] },
      policy: { allowedPlatforms: ['virtual'], allowVirtual: true, allowDebug: false, measurements: { virtual: measurements } },
    });
    writeFileSync(genesisFile, JSON.stringify(genesis(['07'.repeat(48)])));
    expect((await verifyJson([wrappedFile, '--genesis', genesisFile])).out.error?.code).toBe('UNTRUSTED_ROOT');
    const honest = await verifyJson([evidenceFile, '--genesis', genesisFile]);
    expect(honest).toMatchObject({ code: 0, out: { verified: true, accepted: true } });
    // The genesis's policy applies: another measurement is refused.
    writeFileSync(genesisFile, JSON.stringify(genesis(['00'.repeat(48)])));
    const refused = await verifyJson([evidenceFile, '--genesis', genesisFile]);
    expect(refused.code).toBe(1);
    expect(refused.out).toMatchObject({ verified: true, accepted: false });
    writeFileSync(genesisFile, '{"chainId": "not a genesis"}');
    expect((await runCli(['attestation', 'verify', evidenceFile, '--genesis', genesisFile])).stderr).toMatch(/not a Cloister genesis/);
  });

  it('challenges a running node with a fresh nonce and checks its evidence against a genesis', async () => {
    const node = await startNode();
    const genesisFile = join(node.dataDir, 'genesis.json');
    const live = await verifyJson(['--rpc', node.rpcUrl, '--genesis', genesisFile]);
    expect(live.code).toBe(0);
    expect(live.out).toMatchObject({ verified: true, accepted: true, platform: 'virtual' });
    expect(live.out.challenge?.nonce).toMatch(/^[0-9a-f]{64}$/);

    // The node binds each caller's nonce: two challenges, two report_data values.
    const client = new CloisterClient(node.rpcUrl);
    const [a, b] = [await client.getEvidence('aa'.repeat(32)), await client.getEvidence('bb'.repeat(32))];
    expect(a.freshness).toBe('aa'.repeat(32));
    expect(a.reportData).not.toBe(b.reportData);
    await expect(client.getEvidence('not hex')).rejects.toBeInstanceOf(RpcError);

    // Checked against another chain's genesis, the binding does not hold; against another root, nothing verifies.
    const genesis = JSON.parse(readFileSync(genesisFile, 'utf8')) as { chainId: string; enclave: { virtualRoots: string[] } };
    const otherChain = join(dir, 'other-chain.json');
    writeFileSync(otherChain, JSON.stringify({ ...genesis, chainId: 'another-chain' }));
    const wrongChain = await verifyJson(['--rpc', node.rpcUrl, '--genesis', otherChain]);
    expect(wrongChain).toMatchObject({ code: 1, out: { verified: false, error: { code: 'REPORT_DATA_MISMATCH' } } });
    const otherRoot = join(dir, 'other-root.json');
    writeFileSync(otherRoot, JSON.stringify({ ...genesis, enclave: { ...genesis.enclave, virtualRoots: [generateVirtualRoot().publicKeyPem] } }));
    expect((await verifyJson(['--rpc', node.rpcUrl, '--genesis', otherRoot])).out.error?.code).toBe('UNTRUSTED_ROOT');
    expect((await runCli(['attestation', 'verify', '--rpc', node.rpcUrl])).stderr).toMatch(/--rpc needs --genesis/);
  });

  it('evaluates a policy and lists every reason it refuses', async () => {
    const policyFile = join(dir, 'policy.json');
    writeFileSync(policyFile, JSON.stringify({ allowedPlatforms: ['sev-snp'], measurements: { 'sev-snp': ['00'.repeat(48)] } }));
    const refused = await verifyJson([evidenceFile, '--virtual-root', rootFile, '--policy', policyFile]);
    expect(refused.code).toBe(1);
    expect(refused.out.verified).toBe(true);
    expect(refused.out.accepted).toBe(false);
    expect(refused.out.policy?.reasons?.map((r) => r.code)).toEqual(expect.arrayContaining(['PLATFORM_NOT_ALLOWED']));
    writeFileSync(policyFile, JSON.stringify({ allowedPlatforms: ['virtual'], allowVirtual: true, measurements: { virtual: ['07'.repeat(48)] } }));
    expect((await verifyJson([evidenceFile, '--virtual-root', rootFile, '--policy', policyFile])).code).toBe(0);
  });
});

describe.skipIf(!samplesPresent)(`cloister attestation verify on published samples (${samplesPresent ? samplesDir : samplesAbsentMessage})`, () => {
  const s = (p: string): string => resolve(samplesDir, p);

  it('verifies an SEV-SNP report with its VCEK', async () => {
    const { code, out } = await verifyJson([
      s('amd/snp/gsg_milan_v2_report.bin'),
      '--endorsement',
      s('amd/snp/gsg_milan_v2_vcek.der'),
      '--at',
      '2025-06-01T00:00:00Z',
    ]);
    expect(code).toBe(0);
    expect(out.platform).toBe('sev-snp');
    expect(out.debug).toBe(true);
    expect(out.measurement).toMatch(/^[0-9a-f]{96}$/);
  });

  it('verifies SGX quotes in hex and in the Azure JSON wrapper', async () => {
    const hexQuote = await verifyJson([s('intel/sgx/automata_quotev3.hex'), '--at', '2025-06-01T00:00:00Z']);
    expect(hexQuote.code).toBe(0);
    expect(hexQuote.out.platform).toBe('sgx');
    const wrapped = await verifyJson([s('intel/sgx/azsamples_oesdk_enclave.info.release.json'), '--at', '2025-06-01T00:00:00Z']);
    expect(wrapped.out.measurement).toBe('4d62dedf3296fb3e7794b5b57bde276c98d11e79b4f86665aa32d4649f9ab1d8');
  });

  it('verifies an Azure Attestation token inside its validity and refuses it at the current time', async () => {
    const args = [s('maa/maa_sharedwus_sgx_token.jwt'), '--jwks', s('maa/maa_sharedwus_certs_jwks.json')];
    const inside = await verifyJson([...args, '--at', '2022-06-01T00:00:00Z']);
    expect(inside.code).toBe(0);
    expect(inside.out.platform).toBe('maa-sgx');
    const now = await verifyJson(args);
    expect(now.code).toBe(1);
    expect(now.out.error?.code).toBe('EVIDENCE_EXPIRED');
  });
});
