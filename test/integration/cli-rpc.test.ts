import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awaitReceipt, linkTo } from '../../node/cli/rpc-commands.js';
import { CloisterClient, RpcError } from '../../node/client/index.js';
import { findFreePortRange } from '../../scripts/bench/free-ports.js';
import { ROOT, cleanupNodes, runCli, startNode, tempDir, type CliResult, type TestNode } from '../helpers/dev-node.js';

/**
 * The exit statuses and messages of the commands that talk to a node
 * (node/cli/rpc-commands.ts, node/cli/exit-codes.ts), against a real
 * `cloister dev` process, and against small HTTP servers that answer some
 * requests and then fail, which a real node does not do on demand.
 */

const HOSTILE = join(ROOT, 'test/fixtures/contracts/hostile');

let node: TestNode;
let keyFile: string;
const servers: Server[] = [];

beforeAll(async () => {
  node = await startNode(tempDir(), ['--contract', HOSTILE]);
  keyFile = join(tempDir(), 'alice.json');
  expect((await runCli(['keys', 'new', '--out', keyFile])).code).toBe(0);
}, 60_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  await cleanupNodes();
});

/** `cloister tx send` of counter.increment, or of hostile.fail (a method that throws) with `failWith`. */
const send = (rpc: string, extra: string[], failWith?: string): Promise<CliResult> => {
  const target = failWith === undefined ? ['--contract', 'counter', '--method', 'increment'] : ['--contract', 'hostile', '--method', 'fail', '--args', JSON.stringify([failWith])];
  return runCli(['tx', 'send', '--rpc', rpc, '--key', keyFile, ...target, ...extra]);
};

/** One line on stderr, no stack trace. */
function oneLine(result: CliResult): string {
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

/** An HTTP server that answers each JSON-RPC request with `answer(method)`: a result, or 'drop' to cut the connection. */
async function fakeNode(answer: (method: string) => unknown | 'drop', status = 200): Promise<string> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const { id, method } = JSON.parse(body) as { id: number; method: string };
      const result = answer(method);
      if (result === 'drop') {
        req.socket.destroy();
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(status === 200 ? JSON.stringify({ jsonrpc: '2.0', id, result }) : 'Bad Gateway');
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return `http://127.0.0.1:${address.port}`;
}

describe('tx send --wait', () => {
  it('exits 0 with the receipt when the transaction succeeds', async () => {
    const out = await send(node.rpcUrl, ['--wait']);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ status: 'success' });
  });

  it('exits 3 when the receipt is "failed", still printing the receipt, with the contract error on stderr', async () => {
    const out = await send(node.rpcUrl, ['--wait'], 'boom');
    expect(out.code).toBe(3);
    const receipt = JSON.parse(out.stdout) as { status: string; txHash: string; blockHeight: number; error: { code: string } };
    expect(receipt).toMatchObject({ status: 'failed', error: { code: 'CONTRACT_ERROR' } });
    const line = oneLine(out);
    expect(line).toContain(`transaction ${receipt.txHash} was committed in block ${receipt.blockHeight} but failed: CONTRACT_ERROR`);
    expect(line).toContain('boom');
    expect(line).not.toMatch(/cannot reach/);
  });

  it('exits 4 when no receipt comes in time, naming the accepted transaction', async () => {
    const client = new CloisterClient(node.rpcUrl);
    // A nonce one ahead waits in the mempool for the one before it, which never comes.
    const { publicKey } = JSON.parse(readFileSync(keyFile, 'utf8')) as { publicKey: string };
    const ahead = (await client.getNonce(publicKey)) + 1;
    const out = await send(node.rpcUrl, ['--wait', '--timeout', '1500', '--nonce', String(ahead)]);
    expect(out.code).toBe(4);
    expect(out.stdout).toBe('');
    expect(oneLine(out)).toMatch(/^error: transaction [0-9a-f]{64} was accepted, but no receipt within 1500 ms; it may still be committed$/);
  });
});

describe('an error answer is not "cannot reach"', () => {
  it('an unknown contract: exit 1 with the node\'s reason', async () => {
    const out = await runCli(['call', '--rpc', node.rpcUrl, '--contract', 'nope', '--method', 'get', '--args', '[]']);
    expect(out.code).toBe(1);
    const line = oneLine(out);
    expect(line).toMatch(/nope/);
    expect(line).not.toMatch(/cannot reach/);
  });

  it('a used nonce: exit 1 with TX_NONCE_TOO_LOW', async () => {
    const out = await send(node.rpcUrl, ['--nonce', '0']);
    expect(out.code).toBe(1);
    const line = oneLine(out);
    expect(line).toMatch(/TX_NONCE_TOO_LOW/);
    expect(line).not.toMatch(/cannot reach/);
  });

  it('an HTTP error from whatever answers at the URL: exit 1, "unexpected answer"', async () => {
    const url = await fakeNode(() => null, 502);
    const out = await runCli(['status', '--rpc', url]);
    expect(out.code).toBe(1);
    expect(oneLine(out)).toMatch(/unexpected answer from http:\/\/127\.0\.0\.1:\d+ while reading the status: HTTP 502/);
  });
});

describe('an unreachable node', () => {
  it('nothing listening: every command says "cannot reach" and exits 2', async () => {
    const port = await findFreePortRange(1);
    const url = `http://127.0.0.1:${port}`;
    for (const args of [
      ['status', '--rpc', url],
      ['call', '--rpc', url, '--contract', 'counter', '--method', 'get'],
      ['tx', 'send', '--rpc', url, '--key', keyFile, '--contract', 'counter', '--method', 'increment', '--wait'],
    ]) {
      const out = await runCli(args);
      expect(out.code).toBe(2);
      expect(oneLine(out)).toBe(`error: cannot reach ${url}: connection refused (connect ECONNREFUSED 127.0.0.1:${port})`);
    }
  });

  it('a host that does not resolve: "cannot reach", exit 2', async () => {
    const out = await runCli(['status', '--rpc', 'http://cloister-node.invalid:8545']);
    expect(out.code).toBe(2);
    expect(oneLine(out)).toMatch(/^error: cannot reach http:\/\/cloister-node\.invalid:8545: /);
  });
});

describe('a node that answered, then stopped answering', () => {
  const status = { chainId: 'cloister-dev' };
  // tx send asks for the contracts first (to seal for a confidential one); these nodes have none.

  it('before the transaction was sent: exit 1, never "cannot reach"', async () => {
    const url = await fakeNode((method) => (method === 'node_status' ? status : method === 'contract_list' ? [] : 'drop'));
    const out = await send(url, ['--wait']);
    expect(out.code).toBe(1);
    const line = oneLine(out);
    expect(line).toMatch(new RegExp(`^error: ${url} stopped answering while asking for the sender's next nonce: `));
    expect(line).not.toMatch(/cannot reach/);
  });

  it('while sending the transaction: exit 4, its outcome is unknown', async () => {
    const url = await fakeNode((method) => (method === 'node_status' ? status : method === 'contract_list' ? [] : method === 'chain_getNonce' ? 0 : 'drop'));
    const out = await send(url, ['--wait']);
    expect(out.code).toBe(4);
    const line = oneLine(out);
    expect(line).toMatch(/stopped answering while sending the transaction \(it may have been accepted\)/);
    expect(line).not.toMatch(/cannot reach/);
  });

  it('while waiting for the receipt: asks again until --timeout, then exit 4', async () => {
    const hash = 'ab'.repeat(32);
    const url = await fakeNode((method) => (method === 'node_status' ? status : method === 'contract_list' ? [] : method === 'chain_getNonce' ? 0 : method === 'chain_sendTransaction' ? hash : 'drop'));
    const out = await send(url, ['--wait', '--timeout', '800']);
    expect(out.code).toBe(4);
    expect(oneLine(out)).toMatch(new RegExp(`^error: transaction ${hash} was accepted, but ${url} stopped answering \\(.+\\); it may still be committed$`));
  });
});

describe('the key rule through a real node', () => {
  it('a transaction "from" 0100…00 with S = 0 is refused as TX_MALFORMED', async () => {
    const client = new CloisterClient(node.rpcUrl);
    const identity = '01' + '00'.repeat(31);
    const { chainId } = await client.status();
    const forged = { chainId, from: identity, nonce: 0, contract: 'counter', method: 'increment', args: [], gasLimit: 100_000, signature: identity + '00'.repeat(32) };
    const err = await client.sendTransaction(forged).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).chainCode).toBe('TX_MALFORMED');
    expect((err as RpcError).message).toMatch(/small order/);
    expect(await client.getNonce(identity)).toBe(0);
  });
});

describe('--rpc defaults to $CLOISTER_RPC', () => {
  it('status, call and tx send reach the node the variable names, without --rpc', async () => {
    const env = { CLOISTER_RPC: node.rpcUrl };
    const status = await runCli(['status', '--json'], ROOT, env);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ chainId: 'cloister-dev' });
    const sent = await runCli(['tx', 'send', '--key', keyFile, '--contract', 'counter', '--method', 'increment', '--wait'], ROOT, env);
    expect(sent.code).toBe(0);
    expect(JSON.parse(sent.stdout)).toMatchObject({ status: 'success' });
    const call = await runCli(['call', '--contract', 'counter', '--method', 'get'], ROOT, env);
    expect(call.code).toBe(0);
  });

  it('--rpc wins over the variable', async () => {
    const port = await findFreePortRange(1);
    const out = await runCli(['status', '--rpc', node.rpcUrl, '--json'], ROOT, { CLOISTER_RPC: `http://127.0.0.1:${port}` });
    expect(out.code).toBe(0);
  });

  it('without either, the default is http://127.0.0.1:8545 (said in --help)', async () => {
    const help = await runCli(['status', '--help'], ROOT, { CLOISTER_RPC: undefined });
    expect(help.stdout.replace(/\s+/g, ' ')).toContain('(default: $CLOISTER_RPC, else http://127.0.0.1:8545)');
    // Whatever listens on 8545 on this machine, the command went there and not elsewhere.
    const out = await runCli(['gov', 'members'], ROOT, { CLOISTER_RPC: undefined });
    if (out.code === 2) expect(oneLine(out)).toMatch(/^error: cannot reach http:\/\/127\.0\.0\.1:8545: /);
  });
});

describe('tx receipt', () => {
  it('prints the receipt of a committed transaction', async () => {
    const sent = await send(node.rpcUrl, ['--wait']);
    const { txHash } = JSON.parse(sent.stdout) as { txHash: string };
    const out = await runCli(['tx', 'receipt', txHash, '--rpc', node.rpcUrl]);
    expect(out.code).toBe(0);
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout)).toMatchObject({ txHash, status: 'success' });
  });

  it('exit 1 with one line when the node has no receipt; a malformed hash is named as such', async () => {
    const hash = 'cd'.repeat(32);
    const none = await runCli(['tx', 'receipt', hash, '--rpc', node.rpcUrl]);
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('');
    expect(oneLine(none)).toBe(`error: ${node.rpcUrl} has no receipt for transaction ${hash}: not committed (yet), or unknown to it`);
    const bad = await runCli(['tx', 'receipt', 'xyz', '--rpc', node.rpcUrl]);
    expect(bad.code).toBe(1);
    expect(oneLine(bad)).toBe('error: not a transaction hash (64 hex digits): xyz');
  });

  it('--wait waits for a transaction that commits later', async () => {
    const client = new CloisterClient(node.rpcUrl);
    const { publicKey } = JSON.parse(readFileSync(keyFile, 'utf8')) as { publicKey: string };
    // A nonce one ahead waits in the mempool until the one before it is sent: the receipt comes only then.
    const next = await client.getNonce(publicKey);
    const ahead = await send(node.rpcUrl, ['--nonce', String(next + 1)]);
    expect(ahead.code).toBe(0);
    const hash = ahead.stdout.trim();
    const waiting = runCli(['tx', 'receipt', hash, '--rpc', node.rpcUrl, '--wait', '--timeout', '30000']);
    // Not committed yet: asked without --wait, no receipt.
    expect((await runCli(['tx', 'receipt', hash, '--rpc', node.rpcUrl])).code).toBe(1);
    expect((await send(node.rpcUrl, ['--nonce', String(next)])).code).toBe(0);
    const out = await waiting;
    expect(out.code).toBe(0);
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout)).toMatchObject({ txHash: hash, status: 'success' });
  });

  it('--wait: exit 4 when none comes within --timeout, without claiming the transaction was accepted', async () => {
    const hash = 'ef'.repeat(32);
    const out = await runCli(['tx', 'receipt', hash, '--rpc', node.rpcUrl, '--wait', '--timeout', '600']);
    expect(out.code).toBe(4);
    expect(oneLine(out)).toBe(`error: transaction ${hash}: no receipt within 600 ms`);
  });

  it('--wait against nothing listening: "cannot reach", exit 2, at once', async () => {
    const port = await findFreePortRange(1);
    const out = await runCli(['tx', 'receipt', 'ab'.repeat(32), '--rpc', `http://127.0.0.1:${port}`, '--wait']);
    expect(out.code).toBe(2);
    expect(oneLine(out)).toMatch(/^error: cannot reach /);
  });
});

describe('--wait progress', () => {
  it('says what it waits for when it starts, and only "still waiting" lines after', async () => {
    const hash = '12'.repeat(32);
    let polls = 0;
    const url = await fakeNode((method) => (method === 'chain_getTransactionReceipt' ? (++polls < 3 ? null : { txHash: hash, status: 'success' }) : 'drop'));
    const lines: string[] = [];
    const receipt = await awaitReceipt(linkTo(url), hash, 30_000, { progress: (line) => lines.push(line) });
    expect(receipt).toMatchObject({ txHash: hash });
    expect(lines[0]).toBe(`waiting for transaction ${hash} to commit…`);
    for (const line of lines.slice(1)) expect(line).toMatch(/^still waiting for transaction /);
  });
});

describe('block', () => {
  it('prints the head by default, a block by height, and its transactions with --full', async () => {
    const head = await runCli(['block', '--rpc', node.rpcUrl]);
    expect(head.code).toBe(0);
    const latest = JSON.parse(head.stdout) as { height: number };
    expect(latest.height).toBeGreaterThan(0);
    const genesis = await runCli(['block', '0', '--rpc', node.rpcUrl]);
    expect(genesis.code).toBe(0);
    expect(JSON.parse(genesis.stdout)).toMatchObject({ height: 0 });
    const sent = await send(node.rpcUrl, ['--wait']);
    const { blockHeight, txHash } = JSON.parse(sent.stdout) as { blockHeight: number; txHash: string };
    const full = await runCli(['block', String(blockHeight), '--full', '--rpc', node.rpcUrl]);
    expect(full.code).toBe(0);
    expect(full.stdout).toContain(txHash);
    expect(full.stdout).toContain('"method": "increment"');
  });

  it('a bad height and a missing block: one line, exit 1', async () => {
    const bad = await runCli(['block', '-3', '--rpc', node.rpcUrl]);
    expect(bad.code).not.toBe(0);
    const word = await runCli(['block', 'head', '--rpc', node.rpcUrl]);
    expect(word.code).toBe(1);
    expect(oneLine(word)).toBe('error: a block height is a non-negative integer or "latest": head');
    const missing = await runCli(['block', '99999999', '--rpc', node.rpcUrl]);
    expect(missing.code).toBe(1);
    expect(oneLine(missing)).toMatch(new RegExp(`^error: ${node.rpcUrl.replace(/[.]/g, '\\.')} has no block 99999999: its chain is at height \\d+$`));
  });
});

describe('keys show', () => {
  it('prints the public key, never the private key', async () => {
    const out = await runCli(['keys', 'show', keyFile]);
    expect(out.code).toBe(0);
    const { publicKey, privateKey } = JSON.parse(readFileSync(keyFile, 'utf8')) as { publicKey: string; privateKey: string };
    expect(JSON.parse(out.stdout)).toEqual({ type: 'ed25519', publicKey, file: keyFile });
    expect(out.stdout).not.toContain(privateKey);
  });

  it('a missing or malformed file: one line, exit 1', async () => {
    const missing = await runCli(['keys', 'show', '/nonexistent/key.json']);
    expect(missing.code).toBe(1);
    expect(oneLine(missing)).toBe('error: cannot read key file /nonexistent/key.json');
    const notKey = join(tempDir(), 'not-a-key.json');
    writeFileSync(notKey, '{"type": "ed25519"}');
    const bad = await runCli(['keys', 'show', notKey]);
    expect(bad.code).toBe(1);
    expect(oneLine(bad)).toBe(`error: ${notKey} is not an ed25519 key file`);
  });
});

describe('status', () => {
  it('prints a summary by default, and the node_status JSON with the nodes with --json', async () => {
    const json = await runCli(['status', '--json', '--rpc', node.rpcUrl]);
    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout) as { chainId: string; platform: string; measurement: string; nodes: { id: string; admitted: boolean }[] };
    expect(status).toMatchObject({ chainId: 'cloister-dev', platform: 'virtual' });
    expect(status.nodes.length).toBeGreaterThan(0);

    const text = await runCli(['status', '--rpc', node.rpcUrl]);
    expect(text.code).toBe(0);
    expect(text.stderr).toBe('');
    expect(() => JSON.parse(text.stdout)).toThrow();
    expect(text.stdout).toMatch(/^chain +cloister-dev \(genesis [0-9a-f]{16}…\)$/m);
    expect(text.stdout).toMatch(/^height +\d+, head [0-9a-f]{16}… at \d{4}-\d\d-\d\dT/m);
    expect(text.stdout).toContain(`virtual, measurement ${status.measurement.slice(0, 16)}…`);
    expect(text.stdout).toMatch(/^consensus +height \d+, round \d+, step \w+/m);
    expect(text.stdout).toMatch(/^mempool +\d+ transactions?$/m);
    expect(text.stdout).toMatch(/^peers +\d+ connected, \d+ admitted/m);
    expect(text.stdout).toMatch(/^secrets +held /m);
    for (const n of status.nodes) expect(text.stdout).toContain(`  ${n.id}  ${n.admitted ? 'admitted' : 'refused'}`);
  });

  it('names a refused node\'s reason code', async () => {
    const base = { chainId: 'c', nodeId: 'a', height: 1, headHash: '00'.repeat(32), headTime: 0, platform: 'virtual', measurement: '11'.repeat(32), mempoolSize: 1, genesisHash: '22'.repeat(32) };
    const nodes = [
      { id: 'node-a', self: true, admitted: true, connected: true, voteKey: '33'.repeat(32) },
      { id: 'node-b', self: false, admitted: false, connected: false, voteKey: '44'.repeat(32), reason: { code: 'MEASUREMENT_NOT_ALLOWED', message: 'not in the policy' } },
    ];
    const url = await fakeNode((method) => (method === 'node_status' ? base : method === 'net_nodes' ? nodes : 'drop'));
    const out = await runCli(['status', '--rpc', url]);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('  node-a  admitted  [this node]');
    expect(out.stdout).toContain('  node-b  refused MEASUREMENT_NOT_ALLOWED: not in the policy');
    expect(out.stdout).toMatch(/^mempool +1 transaction$/m);
    // An older node's status without consensus, peers or secrets: those lines are left out, not shown as undefined.
    expect(out.stdout).not.toMatch(/undefined|consensus|peers|secrets/);
  });
});
