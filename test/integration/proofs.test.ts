/**
 * Receipt and state proofs from a real node, verified offline with nothing
 * but the genesis: the CLI's export and verify, and the refusals of a proof
 * with any changed byte, another consortium's genesis, or a certificate that
 * is not a quorum of the validators.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ed25519Signer, generateEd25519KeyPair, headerHash, precommitFor, voteMessage, type Genesis } from '../../consensus/index.js';
import { CloisterClient } from '../../node/client/index.js';
import { EXIT } from '../../node/cli/exit-codes.js';
import { readGenesisFile } from '../../node/dev/dev-chain.js';
import { ProofError, verifyReceiptProof, verifyStateValueProof, type ReceiptProof, type StateValueProof } from '../../node/proofs/index.js';
import { ROOT, cleanupNodes, runCli, startNode, tempDir, type TestNode } from '../helpers/dev-node.js';
import { execute, newSigner } from '../helpers/tx.js';

let node: TestNode;
let other: TestNode;
let client: CloisterClient;
let genesis: Genesis;
let genesisFile: string;
let txHash: string;
const now = { now: new Date() };

beforeAll(async () => {
  [node, other] = await Promise.all([startNode(tempDir()), startNode(tempDir())]);
  client = new CloisterClient(node.rpcUrl);
  genesisFile = join(node.dataDir, 'genesis.json');
  genesis = readGenesisFile(genesisFile);
  const signer = newSigner();
  await execute(client, signer, 'counter', 'increment');
  txHash = (await execute(client, signer, 'counter', 'increment')).txHash;
}, 60_000);
afterAll(cleanupNodes);

const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const refusal = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    if (err instanceof ProofError) return err.code;
    throw err;
  }
  return 'verified';
};

describe('receipt proofs', () => {
  it('export and verify with the CLI, offline against the genesis file', async () => {
    const file = join(tempDir(), 'receipt.json');
    const exported = await runCli(['receipt', 'export', '--rpc', node.rpcUrl, '--tx', txHash, '--out', file]);
    expect(exported.code, exported.stderr).toBe(0);
    const ok = await runCli(['receipt', 'verify', file, '--genesis', genesisFile]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`verified: transaction ${txHash}`);
    expect(ok.stdout).toContain('status success');
    const json = JSON.parse((await runCli(['receipt', 'verify', file, '--genesis', genesisFile, '--json'])).stdout) as { receipt: { result: unknown }; signers: unknown[] };
    expect(json.receipt.result).toBe(2);
    expect(json.signers).toHaveLength(1);

    // One changed byte: the gas the receipt says was used.
    const proof = JSON.parse(readFileSync(file, 'utf8')) as ReceiptProof;
    proof.receipt.gasUsed += 1;
    writeFileSync(file, JSON.stringify(proof));
    const bad = await runCli(['receipt', 'verify', file, '--genesis', genesisFile]);
    expect(bad.code).toBe(EXIT.PROOF_INVALID);
    expect(bad.stderr).toContain('RECEIPT_PATH');

    // Another consortium's genesis.
    const foreign = await runCli(['receipt', 'verify', file, '--genesis', join(other.dataDir, 'genesis.json')]);
    expect(foreign.code).toBe(EXIT.PROOF_INVALID);
  });

  it('refuses a proof with a changed status, result, event, transaction, path or signature', async () => {
    const proof = (await client.getReceiptProof(txHash))!;
    const verified = verifyReceiptProof(proof, genesis, now);
    expect(verified.receipt.result).toBe(2);
    // The signer's evidence is the one its enclave put on the ledger, as a proposer, bound to that block's parent.
    expect(proof.block.attestations[0]!.ledger).toBeDefined();
    expect(verified.signers[0]!.attestedAt!.height).toBeLessThanOrEqual(verified.height);
    expect(proof.receipt.error).toBeNull();
    const cases: [string, (p: ReceiptProof) => void, string][] = [
      ['status', (p) => (p.receipt.status = 'failed'), 'RECEIPT_PATH'],
      ['result', (p) => (p.receipt.result = 3), 'RECEIPT_PATH'],
      ['event', (p) => ((p.receipt.events[0]!.data as { value: number }).value = 3), 'RECEIPT_PATH'],
      ['error', (p) => (p.receipt.error = { code: 'X', message: 'y' }), 'RECEIPT_PATH'],
      ['tx args', (p) => ((p.tx as { args: unknown[] }).args = [1]), 'TX_INVALID'],
      ['tx path', (p) => (p.txPath.index = p.txPath.index + 1), 'TX_PATH'],
      ['certificate signature', (p) => (p.block.certificate.signatures[0]!.signature = flip(p.block.certificate.signatures[0]!.signature)), 'CERTIFICATE'],
      ['header', (p) => (p.block.header.time += 1), 'CERTIFICATE'],
      ['state root', (p) => (p.block.header.stateRoot = '0'.repeat(64)), 'CERTIFICATE'],
      ['evidence', (p) => (p.block.attestations[0]!.evidence = p.block.attestations[0]!.evidence.slice(0, -8) + 'AAAAAAA='), 'ATTESTATION'],
      ['no evidence', (p) => (p.block.attestations = []), 'ATTESTATION'],
      ['ledger evidence of another block', (p) => (p.block.attestations[0]!.ledger!.header.parentHash = 'ab'.repeat(32)), 'CERTIFICATE'],
      ['evidence not the ledger transaction\'s', (p) => (p.block.attestations[0]!.publicKeys = { ...p.block.attestations[0]!.publicKeys, token: 'cd'.repeat(32) }), 'ATTESTATION'],
      ['ledger path', (p) => (p.block.attestations[0]!.ledger!.txPath.index += 1), 'ATTESTATION'],
      ['kind', (p) => ((p as { kind: string }).kind = 'x'), 'PROOF_MALFORMED'],
    ];
    for (const [what, change, code] of cases) {
      const altered = copy(proof);
      change(altered);
      expect(refusal(() => verifyReceiptProof(altered, genesis, now)), what).toBe(code);
    }
    expect(refusal(() => verifyReceiptProof(proof, readGenesisFile(join(other.dataDir, 'genesis.json')), now))).toMatch(/WRONG_CHAIN|VALIDATOR_SET/);
  });

  it('refuses a certificate signed by keys that are not the validators, and a header re-signed by them', async () => {
    const proof = (await client.getReceiptProof(txHash))!;
    const outsiders = [0, 1, 2, 3].map(() => new Ed25519Signer(generateEd25519KeyPair().privateKey));
    const header = { ...proof.block.header, stateRoot: 'f'.repeat(64) };
    const blockHash = headerHash(header);
    const message = voteMessage(precommitFor(genesis.chainId, header.height, 0, blockHash));
    const forged = copy(proof);
    forged.block.header = header;
    forged.block.certificate = { height: header.height, round: 0, blockHash, signatures: outsiders.map((s) => ({ validator: s.publicKey, signature: s.sign(message) })) };
    expect(refusal(() => verifyReceiptProof(forged, genesis, now))).toBe('CERTIFICATE');
  });

  it("the explorer page's browser build of the verifier (noble in place of node:crypto) decides as the node's does", async () => {
    const browserBuild = (await import(pathToFileURL(join(ROOT, 'dist/explorer/explorer-verifier.js')).href)) as { verifyReceiptProof: typeof verifyReceiptProof };
    const proof = (await client.getReceiptProof(txHash))!;
    expect(browserBuild.verifyReceiptProof(proof, genesis, now).signers[0]!.platform).toBe('virtual');
    const altered = copy(proof);
    altered.receipt.gasUsed += 1;
    expect(() => browserBuild.verifyReceiptProof(altered, genesis, now)).toThrow(expect.objectContaining({ code: 'RECEIPT_PATH' }));
    const forged = copy(proof);
    forged.block.certificate.signatures[0]!.signature = flip(forged.block.certificate.signatures[0]!.signature);
    expect(() => browserBuild.verifyReceiptProof(forged, genesis, now)).toThrow(expect.objectContaining({ code: 'CERTIFICATE' }));
  });

  it('a transaction that is not committed has no proof', async () => {
    expect(await client.getReceiptProof('ab'.repeat(32))).toBeNull();
  });
});

describe('state proofs', () => {
  it('a public value verifies, offline with the CLI, and fails when altered', async () => {
    const proof = await client.getStateProof('counter', 'value');
    expect(verifyStateValueProof(proof, genesis, now).value).toBeGreaterThanOrEqual(2);
    const absent = await client.getStateProof('counter', 'nothing-here');
    expect(absent.value).toBeNull();
    expect(verifyStateValueProof(absent, genesis, now).value).toBeNull();
    const cases: [string, (p: StateValueProof) => void, string][] = [
      ['value', (p) => (p.value = 99), 'STATE_PATH'],
      ['key', (p) => (p.key = 'other'), 'STATE_PATH'],
      ['absent', (p) => (p.value = null), 'STATE_PATH'],
      ['sibling', (p) => (p.proof.siblings[0] = flip(p.proof.siblings[0] ?? '0'.repeat(64))), 'STATE_PATH'],
    ];
    for (const [what, change, code] of cases) {
      const altered = copy(proof);
      change(altered);
      expect(refusal(() => verifyStateValueProof(altered, genesis, now)), what).toBe(code);
    }
    const file = join(tempDir(), 'state.json');
    expect((await runCli(['state', 'export', '--rpc', node.rpcUrl, '--contract', 'counter', '--key', 'value', '--out', file])).code).toBe(0);
    const ok = await runCli(['state', 'verify', file, '--genesis', genesisFile]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/verified: counter\/value holds \d+ after block \d+/);
    const altered = JSON.parse(readFileSync(file, 'utf8')) as StateValueProof;
    altered.value = 1000;
    writeFileSync(file, JSON.stringify(altered));
    expect((await runCli(['state', 'verify', file, '--genesis', genesisFile])).code).toBe(EXIT.PROOF_INVALID);
  });

  it('`call --prove` checks a plain state read against a proof; a recent height is provable, an old one is refused with a clear error', async () => {
    const proved = await runCli(['call', '--rpc', node.rpcUrl, '--contract', 'counter', '--method', 'get', '--prove', 'value', '--genesis', genesisFile]);
    expect(proved.code, proved.stderr).toBe(0);
    expect(proved.stderr).toMatch(/proved: the result is the value of counter\/value after block \d+/);
    // A method that is not that key's read fails the check.
    const wrong = await runCli(['call', '--rpc', node.rpcUrl, '--contract', 'counter', '--method', 'get', '--prove', 'other', '--genesis', genesisFile]);
    expect(wrong.code).toBe(EXIT.PROOF_INVALID);
    const head = await client.blockNumber();
    const recent = await client.getStateProof('counter', 'value', head - 1 >= 1 ? head - 1 : head);
    expect(() => verifyStateValueProof(recent, genesis, now)).not.toThrow();
    await expect(client.getStateProof('counter', 'value', head + 1000)).rejects.toMatchObject({ chainCode: 'STATE_PROOF_UNAVAILABLE' });
  });
});

function flip(hex: string): string {
  return (hex[0] === '0' ? '1' : '0') + hex.slice(1);
}
