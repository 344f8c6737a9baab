/**
 * `cloister audit` against real dev nodes: a node built from the auditor's
 * source passes; a source tree whose enclave program differs by one file, a
 * contract bundle that differs, a node of another chain and a node that does
 * not answer are each a finding naming what differs.
 */
import { appendFileSync, cpSync, mkdirSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditReport } from '../../node/audit/index.js';
import { ROOT, cleanupNodes, runCli, startNode, tempDir, type TestNode } from '../helpers/dev-node.js';
import { noteBoard } from '../helpers/note-board.js';

const scratch = tempDir();
/** Bundles as the node runs them (good) and a changed one of the same name (changed). */
const good = join(scratch, 'good');
const changed = join(scratch, 'changed');
let node: TestNode;
let genesisFile: string;
let measurement: string;

async function audit(args: string[]): Promise<{ code: number; report: AuditReport; stderr: string }> {
  const r = await runCli(['audit', '--genesis', genesisFile, ...args, '--json']);
  return { code: r.code, report: JSON.parse(r.stdout) as AuditReport, stderr: r.stderr };
}

/** A copy of what the enclave measurement covers (the built program, the runtime packages) and the example contracts. */
function copyOfSource(): string {
  const dir = tempDir('cloister-audit-source-');
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  for (const part of ['attestation', 'consensus', 'contracts']) cpSync(join(ROOT, 'dist', part), join(dir, 'dist', part), { recursive: true });
  cpSync(join(ROOT, 'contracts', 'examples'), join(dir, 'contracts', 'examples'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  mkdirSync(good);
  mkdirSync(changed);
  node = await startNode(tempDir(), ['--contract', noteBoard(good, 1)]);
  genesisFile = join(node.dataDir, 'genesis.json');
  // A governance history: the one member deploys a second contract.
  const deployed = await runCli(['contract', 'deploy', '--rpc', node.rpcUrl, '--key', join(node.dataDir, 'member.json'), noteBoard(good, 1, 'tally')]);
  expect(deployed.code, deployed.stderr).toBe(0);
  measurement = (await runCli(['enclave', 'measure'])).stdout.trim();
}, 180_000);
afterAll(cleanupNodes);

describe('cloister audit', () => {
  it('passes a node running the program built from the source, with the contracts of the source', async () => {
    const { code, report, stderr } = await audit(['--rpc', node.rpcUrl, '--source', ROOT, '--contracts', good]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.findings).toEqual([]);
    expect(report.source).toMatchObject({ dir: ROOT, measurement });
    const [audited] = report.nodes;
    expect(audited).toMatchObject({ url: node.rpcUrl, platform: 'virtual', measurement });
    expect(audited!.checks.map((c) => [c.name, c.ok])).toEqual([
      ['runs the genesis', true],
      ['head certified from the genesis', true],
      ['policy in force is committed', true],
      ['evidence verifies', true],
      ['binds the nonce', true],
      ['binds the chain id', true],
      ['binds the node id', true],
      ['validator in force', true],
      ['policy in force accepts it', true],
      ['measurement matches the source', true],
    ]);
    expect(report.consortium).toMatchObject([{ ok: true }]);
    expect(report.contracts.map((c) => [c.name, c.ok])).toEqual([
      ['analytics', true],
      ['counter', true],
      ['notes', true],
      ['tally', true],
      ['token', true],
    ]);
    expect(report.governance).toEqual([{ id: 1, state: 'accepted', proposer: 'dev', actions: ['deployContract'], votes: 1, approvals: 1, rejections: 0 }]);

    const human = await runCli(['audit', '--rpc', node.rpcUrl, '--genesis', genesisFile, '--source', ROOT, '--contracts', good]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('  ✓ binds the nonce: nonce ');
    expect(human.stdout).toContain(`  ✓ measurement matches the source: ${ROOT} measures ${measurement}`);
    expect(human.stdout).toMatch(/#1 accepted by dev: deployContract; 1 vote\(s\), 1 for, 0 against/);
    expect(human.stdout).toMatch(/summary: OK: 1 node\(s\), \d+ check\(s\), no finding\n$/);
  }, 120_000);

  it('flags a node whose measurement differs from the source, and deployed contracts that differ from or lack a bundle', async () => {
    const source = copyOfSource();
    appendFileSync(join(source, 'dist', 'consensus', 'index.js'), '\n// one changed line\n');
    const sourceMeasurement = (await runCli(['enclave', 'measure', '--source', source])).stdout.trim();
    noteBoard(changed, 2);

    const { code, report } = await audit(['--rpc', node.rpcUrl, '--source', source, '--contracts', changed]);
    expect(code).toBe(5);
    expect(report.ok).toBe(false);
    expect(report.source?.measurement).toBe(sourceMeasurement);
    expect(sourceMeasurement).not.toBe(measurement);
    expect(report.findings.map((f) => [f.code, f.node ?? null])).toEqual([
      ['SOURCE_MISMATCH', node.rpcUrl],
      ['CONTRACT_MISMATCH', null],
      ['CONTRACT_NO_BUNDLE', null],
    ]);
    expect(report.findings[0]!.message).toContain(`the node runs ${measurement}, the source ${source} measures ${sourceMeasurement}`);
    expect(report.findings[1]!.message).toMatch(/^contract notes: the chain runs [0-9a-f]{64}, the bundle .*notes-v2 measures [0-9a-f]{64}$/);
    expect(report.findings[2]!.message).toMatch(/^contract tally: deployed with measurement [0-9a-f]{64}, but no bundle named "tally" in the sources$/);

    const human = await runCli(['audit', '--rpc', node.rpcUrl, '--genesis', genesisFile, '--source', source, '--contracts', changed]);
    expect(human.code).toBe(5);
    expect(human.stdout).toContain(`  ✗ measurement matches the source: the node runs ${measurement}`);
    expect(human.stdout).toMatch(/summary: 3 finding\(s\) over 1 node\(s\)/);
    expect(human.stderr.trim().split('\n').map((l) => l.split(':')[0])).toEqual([
      'finding SOURCE_MISMATCH',
      'finding CONTRACT_MISMATCH',
      'finding CONTRACT_NO_BUNDLE',
    ]);
  }, 120_000);

  it('a node of another chain and a node that does not answer are findings, not a crash', async () => {
    const other = await startNode();
    const silent = `http://127.0.0.1:${await closedPort()}`;
    const { code, report } = await audit(['--rpc', `${node.rpcUrl},${other.rpcUrl}`, '--rpc', silent, '--timeout', '3000']);
    expect(code).toBe(5);
    expect(report.nodes.map((n) => n.url)).toEqual([node.rpcUrl, other.rpcUrl, silent]);
    expect(report.nodes[0]!.checks.every((c) => c.ok)).toBe(true);
    // Another dev chain: another genesis, and evidence under a virtual root this genesis does not declare.
    expect(report.nodes[1]!.checks.filter((c) => !c.ok).map((c) => c.code)).toEqual(['GENESIS_MISMATCH', 'HEAD_NOT_CERTIFIED', 'EVIDENCE_INVALID']);
    // The first node's head verifies from the genesis: its signer attested by evidence on the ledger.
    expect(report.nodes[0]!.checks.find((c) => c.name === 'head certified from the genesis')?.detail).toMatch(/^block \d+ \([0-9a-f]{64}\): 1 signers, each attested \(1 by evidence on the ledger\)$/);
    expect(report.nodes[2]).toMatchObject({ nodeId: null, checks: [{ name: 'answers', ok: false, code: 'NODE_UNREACHABLE', detail: expect.stringMatching(/cannot reach .*ECONNREFUSED/) }] });
    expect(report.consortium).toMatchObject([{ ok: false, code: 'HEADS_DIVERGE' }]);
    // The second chain runs the examples too, but not notes and tally.
    expect(report.contracts.filter((c) => !c.ok).map((c) => [c.name, c.code])).toEqual([
      ['notes', 'CONTRACTS_DIFFER'],
      ['tally', 'CONTRACTS_DIFFER'],
    ]);
    expect((await runCli(['audit', '--rpc', 'ftp://x', '--genesis', genesisFile])).stderr).toMatch(/must be an http/);
  }, 120_000);
});
