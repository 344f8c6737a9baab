import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { CloisterClient, type BlockView, type EventNotification, type ReceiptView } from '../../node/client/index.js';
import { cleanupNodes, startNode, tempDir, type TestNode } from '../helpers/dev-node.js';
import { execute, newSigner } from '../helpers/tx.js';

/** Small, so that a client that stops reading is over it within a few blocks. */
const BUFFER_LIMIT = 64 * 1024;

let node: TestNode;
let client: CloisterClient;

beforeAll(async () => {
  // A dev chain with a small maxSocketBufferedBytes: created once, then restarted with it in its config.
  const dataDir = tempDir();
  await (await startNode(dataDir)).stop();
  const configFile = join(dataDir, 'config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as { rpc: Record<string, unknown> };
  config.rpc.maxSocketBufferedBytes = BUFFER_LIMIT;
  writeFileSync(configFile, JSON.stringify(config));
  node = await startNode(dataDir);
  client = new CloisterClient(node.rpcUrl);
}, 60_000);

afterAll(async () => {
  await client?.closeSubscriptions();
  await cleanupNodes();
});

/** Resolves once `check()` holds, checked after each notification. */
function until(check: () => boolean): { notify(): void; reached: Promise<void> } {
  let resolve!: () => void;
  const reached = new Promise<void>((r) => (resolve = r));
  const notify = (): void => {
    if (check()) resolve();
  };
  return { notify, reached };
}

/** Heights are consecutive, each once. */
function expectConsecutive(heights: number[]): void {
  expect(heights.length).toBeGreaterThan(0);
  expect(heights).toEqual(Array.from({ length: heights.length }, (_, i) => heights[0]! + i));
}

describe('subscriptions on a dev node', () => {
  it('delivers every committed block in order, with the receipts and events of its transactions', async () => {
    const heads: BlockView[] = [];
    const receipts: ReceiptView[] = [];
    const events: EventNotification[] = [];
    const lastHeight = { value: Number.POSITIVE_INFINITY };
    const done = until(() => heads.some((b) => b.height >= lastHeight.value) && receipts.length >= 5 && events.length >= 5);
    const subs = await Promise.all([
      client.subscribe('newHeads', undefined, (b) => (heads.push(b), done.notify())),
      client.subscribe('receipts', { contract: 'counter' }, (r) => (receipts.push(r), done.notify())),
      client.subscribe('events', { contract: 'counter', name: 'Incremented' }, (e) => (events.push(e), done.notify())),
    ]);
    const signer = newSigner();
    const sent: ReceiptView[] = [];
    for (let i = 0; i < 5; i++) sent.push(await execute(client, signer, 'counter', 'increment'));
    lastHeight.value = sent.at(-1)!.blockHeight;
    done.notify();
    await done.reached;

    expectConsecutive(heads.map((b) => b.height));
    for (const head of heads.slice(0, 3)) expect(head).toEqual(await client.getBlockByNumber(head.height, false));
    expect(receipts.map((r) => r.txHash)).toEqual(sent.map((r) => r.txHash));
    expect(receipts).toEqual(sent);
    for (const receipt of receipts) expect(heads.find((b) => b.height === receipt.blockHeight)?.transactions).toContain(receipt.txHash);
    expect(events.map((e) => e.txHash)).toEqual(sent.map((r) => r.txHash));
    expect(events[0]).toMatchObject({ contract: 'counter', name: 'Incremented', eventIndex: 0, blockHeight: sent[0]!.blockHeight, data: sent[0]!.events[0]!.data });
    for (const sub of subs) expect(await sub.unsubscribe()).toBe(true);
  });

  it('drops a client that stops reading while the chain goes on and another subscriber gets every block', async () => {
    // The slow client: 64 newHeads subscriptions on one socket, then it stops reading.
    const slow = new WebSocket(node.rpcUrl.replace('http', 'ws'));
    await once(slow, 'open');
    const answered = once(slow, 'message');
    slow.send(JSON.stringify(Array.from({ length: 64 }, (_, id) => ({ jsonrpc: '2.0', id, method: 'chain_subscribe', params: ['newHeads'] }))));
    const [answer] = (await answered) as [Buffer];
    expect((JSON.parse(answer.toString()) as { result: string }[]).every((r) => /^[0-9a-f]{32}$/.test(r.result))).toBe(true);
    slow.pause();

    const heads: number[] = [];
    let onHead = (): void => {};
    const fast = await client.subscribe('newHeads', undefined, (b) => {
      heads.push(b.height);
      onHead();
    });
    const signer = newSigner();
    let sending = true;
    const load = (async () => {
      while (sending) await execute(client, signer, 'counter', 'increment');
    })();
    try {
      // The node says when it dropped the slow client (its log is the only outside view of that).
      await vi.waitFor(() => expect(node.stderrTail()).toContain('WebSocket dropped'), { timeout: 30_000, interval: 100 });
      const droppedAt = heads.at(-1) ?? 0;
      // The chain goes on, and the other subscriber with it.
      const more = until(() => (heads.at(-1) ?? 0) >= droppedAt + 5);
      onHead = more.notify;
      await more.reached;
    } finally {
      sending = false;
      await load;
    }
    // Reading again, the slow client gets what was queued, then the close.
    const closed = once(slow, 'close');
    slow.resume();
    const [code, reason] = (await closed) as [number, Buffer];
    expect(code).toBe(1008);
    expect(reason.toString()).toContain('too slow');
    expectConsecutive(heads);
    expect(await fast.unsubscribe()).toBe(true);
  }, 60_000);
});
