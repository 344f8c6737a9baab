/**
 * Governance on a `cloister dev` chain (one member, who alone is a majority),
 * driven through the CLI as a contract developer and a member would: deploy
 * and upgrade at runtime, the developer's loop with `dev --contract`, and
 * every governance refusal with its code.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloisterClient, RpcError } from '../../node/client/index.js';
import { writeKeyFile } from '../../node/keys/key-file.js';
import { generateEd25519KeyPair } from '../../consensus/index.js';
import { cleanupNodes, runCli, startNode, tempDir, type TestNode } from '../helpers/dev-node.js';
import { execute, newSigner } from '../helpers/tx.js';
import { noteBoard } from '../helpers/note-board.js';

const json = (text: string): Record<string, unknown> => JSON.parse(text) as Record<string, unknown>;

/** Bundles and key files this file makes (removed at the end). */
const scratch = tempDir();
let node: TestNode;
let client: CloisterClient;
let member: string;
let v1: string;
let v2: string;

beforeAll(async () => {
  v1 = noteBoard(scratch, 1);
  v2 = noteBoard(scratch, 2);
  node = await startNode(tempDir(), ['--contract', v1]);
  client = new CloisterClient(node.rpcUrl);
  member = join(node.dataDir, 'member.json');
});
afterAll(async () => {
  await cleanupNodes();
  rmSync(scratch, { recursive: true, force: true });
});

describe('a contract developer on a dev chain', () => {
  it('deploys a contract at runtime with one command: the one member is a majority', async () => {
    const tally = noteBoard(scratch, 1, 'tally');
    const out = await runCli(['contract', 'deploy', '--rpc', node.rpcUrl, '--key', member, tally]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const proposal = json(out.stdout);
    expect(proposal).toMatchObject({ state: 'accepted', approvals: 1, required: 1, proposer: 'dev' });
    expect((proposal['actions'] as { type: string; name: string }[])[0]).toMatchObject({ type: 'deployContract', name: 'tally' });
    const measured = json((await runCli(['contract', 'check', tally, '--json'])).stdout);
    expect((proposal['actions'] as { measurement: string }[])[0]!.measurement).toBe(measured['measurement']);
    expect((await client.listContracts()).map((c) => c.name)).toContain('tally');
    expect((await execute(client, newSigner(), 'tally', 'post', ['hi'])).result).toBe(1);
  }, 180_000);

  it('upgrades a contract keeping its state; `dev --contract` then refuses the old bundle, naming the command, and runs the new one', async () => {
    const writer = newSigner();
    await execute(client, writer, 'notes', 'post', ['a']);
    await execute(client, writer, 'notes', 'post', ['b']);
    const out = await runCli(['contract', 'upgrade', '--rpc', node.rpcUrl, '--key', member, 'notes', v2]);
    expect(out.code).toBe(0);
    expect(json(out.stdout)).toMatchObject({ state: 'accepted' });
    expect((await client.call('notes', 'doubled', [])).result).toBe(4);

    await node.stop();
    const stale = await runCli(['dev', '--data', node.dataDir, '--rpc-port', '0', '--contract', v1]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/contract "notes" in .* differs from the one the chain in .* runs/);
    expect(stale.stderr).toContain(`cloister contract upgrade --rpc URL --key ${member} notes ${v1}`);
    const unknown = await runCli(['dev', '--data', node.dataDir, '--rpc-port', '0', '--contract', noteBoard(scratch, 1, 'never')]);
    expect(unknown.code, unknown.stderr).toBe(1);
    expect(unknown.stderr.split('\n').find((l) => l.startsWith('error:'))).toMatch(/contract "never" .* is not deployed on the chain .*`cloister contract deploy --rpc URL/);

    node = await startNode(node.dataDir, ['--contract', v2]);
    client = new CloisterClient(node.rpcUrl);
    expect((await client.call('notes', 'count', [])).result).toBe(2);
  }, 180_000);
});

describe('governance through the CLI', () => {
  let outsider: string;
  beforeAll(() => {
    outsider = join(scratch, 'outsider.json');
    writeKeyFile(outsider, generateEd25519KeyPair());
  }, 180_000);

  it('shows the members, the proposals and one proposal', async () => {
    expect(json((await runCli(['gov', 'members', '--rpc', node.rpcUrl])).stdout)).toMatchObject({ threshold: 1, members: [{ id: 'dev' }] });
    const list = JSON.parse((await runCli(['gov', 'list', '--rpc', node.rpcUrl, '--state', 'accepted'])).stdout) as { id: number }[];
    expect(list.map((p) => p.id)).toEqual([2, 1]);
    const shown = await runCli(['gov', 'show', '--rpc', node.rpcUrl, '--proposal', '2']);
    expect(json(shown.stdout)).toMatchObject({ id: 2, state: 'accepted', actions: [{ type: 'upgradeContract', name: 'notes' }] });
  }, 180_000);

  it('a proposal left open is voted on, or withdrawn by its proposer', async () => {
    const made = await runCli(['gov', 'propose', '--rpc', node.rpcUrl, '--key', member, '--add-member', `ops=${outsider}`]);
    expect(made.code).toBe(0);
    const open = json(made.stdout);
    expect(open).toMatchObject({ state: 'open', approvals: 0, required: 1 });
    expect(made.stderr).toMatch(/members vote with `cloister gov vote/);
    const voted = await runCli(['gov', 'vote', '--rpc', node.rpcUrl, '--key', member, '--proposal', String(open['id']), '--approve']);
    expect(json(voted.stdout)).toMatchObject({ state: 'accepted' });
    expect((await client.members()).members.map((m) => m.id)).toEqual(['dev', 'ops']);

    const second = json((await runCli(['gov', 'propose', '--rpc', node.rpcUrl, '--key', member, '--set-threshold', '2'])).stdout);
    const withdrawn = await runCli(['gov', 'withdraw', '--rpc', node.rpcUrl, '--key', member, '--proposal', String(second['id'])]);
    expect(json(withdrawn.stdout)).toMatchObject({ state: 'withdrawn' });
  }, 180_000);

  it('refuses every malformed or unauthorised input with its code, and nothing changes', async () => {
    const before = await client.listProposals();
    const notANode = join(scratch, 'not-a-node.json');
    writeFileSync(notANode, JSON.stringify({ nodeId: 5 }));
    const refusals: [string[], RegExp][] = [
      [['gov', 'propose', '--rpc', node.rpcUrl, '--key', member, '--add-node', notANode], /--add-node .*not-a-node\.json: the JSON `cloister node init` printed/],
      [['gov', 'propose', '--rpc', node.rpcUrl, '--key', join(scratch, 'missing.json'), '--set-threshold', '1'], /missing\.json/],
      [['gov', 'propose', '--rpc', node.rpcUrl, '--key', member, '--remove-member', 'nobody'], /"nobody" is not a member \(GOV_ACTION_INVALID\)/],
      [['gov', 'propose', '--rpc', node.rpcUrl, '--key', member, '--set-threshold', '5'], /the threshold 5 would exceed the 2 members \(GOV_ACTION_INVALID\)/],
      [['gov', 'propose', '--rpc', node.rpcUrl, '--key', member, '--allow-measurement', 'virtual=zz'], /48 bytes of lowercase hex \(GOV_ACTION_INVALID\)/],
      [['gov', 'propose', '--rpc', node.rpcUrl, '--key', member], /name at least one action/],
      [['gov', 'vote', '--rpc', node.rpcUrl, '--key', member, '--proposal', '1', '--approve'], /proposal 1 is accepted \(GOV_PROPOSAL_CLOSED\)/],
      [['gov', 'vote', '--rpc', node.rpcUrl, '--key', member, '--proposal', '99', '--reject'], /no proposal 99 \(GOV_PROPOSAL_NOT_FOUND\)/],
      [['gov', 'vote', '--rpc', node.rpcUrl, '--key', member, '--proposal', '1'], /exactly one of --approve and --reject/],
      [['gov', 'show', '--rpc', node.rpcUrl, '--proposal', '99'], /no proposal 99 \(GOV_PROPOSAL_NOT_FOUND\)/],
      [['contract', 'deploy', '--rpc', node.rpcUrl, '--key', member, join(scratch, 'nothing')], /does not exist/],
    ];
    for (const [args, message] of refusals) {
      const out = await runCli(args);
      expect(out.code, args.join(' ')).toBe(1);
      expect(out.stderr, args.join(' ')).toMatch(message);
    }
    // An outsider's key: refused at the node, before any block.
    const strangerFile = join(scratch, 'stranger.json');
    writeKeyFile(strangerFile, generateEd25519KeyPair());
    const notMember = await runCli(['contract', 'deploy', '--rpc', node.rpcUrl, '--key', strangerFile, noteBoard(scratch, 1, 'intruder')]);
    expect(notMember.code).toBe(1);
    expect(notMember.stderr).toMatch(/is not a member of the consortium \(GOV_NOT_MEMBER\)/);
    const stranger = newSigner();
    const err = await client.propose(stranger, [{ type: 'setThreshold', threshold: 1 }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).chainCode).toBe('GOV_NOT_MEMBER');
    expect(await client.listProposals()).toEqual(before);
  }, 180_000);
});
