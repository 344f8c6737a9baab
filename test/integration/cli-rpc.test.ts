import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
