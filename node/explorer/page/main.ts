import { call, followHeads } from './rpc.js';
import { verifyReceiptInPage } from './verify.js';

/**
 * The node's explorer page. Everything shown from the chain (contract names,
 * event data, arguments) is attacker-controlled: the DOM is built with
 * textContent only, never innerHTML.
 */

interface Block {
  hash: string;
  height: number;
  time: number;
  proposer: string;
  transactions: (string | Tx)[];
}
interface Tx {
  hash: string;
  from: string;
  nonce: number;
  contract: string;
  method?: string;
  args?: unknown[];
  sealed?: { ct: string };
}
interface Receipt {
  status: string;
  gasUsed: number;
  result: unknown;
  events: { contract: string; name: string; data: unknown }[];
  error?: { code: string; message: string };
  sealed?: string;
}

const RECENT = 20;
const VALIDATORS_EVERY = 10;

type Child = Node | string | number;

function el(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) node.append(typeof child === 'number' ? String(child) : child);
  return node;
}

const short = (hex: string): string => (hex.length > 16 ? `${hex.slice(0, 8)}…${hex.slice(-6)}` : hex);
const json = (value: unknown): string => JSON.stringify(value);
/** Bytes of base64 text. */
const base64Bytes = (text: string): number => Math.floor((text.length * 3) / 4) - (text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0);

function section(id: string): HTMLElement {
  return document.getElementById(id)!;
}

function replace(id: string, ...children: Child[]): void {
  section(id).replaceChildren(...children.map((c) => (typeof c === 'number' ? String(c) : c)));
}

function blockRow(block: Block): HTMLElement {
  const row = el(
    'tr',
    { 'data-height': String(block.height) },
    el('td', {}, block.height),
    el('td', { class: 'hash', title: block.hash }, short(block.hash)),
    el('td', {}, new Date(block.time).toISOString()),
    el('td', {}, block.transactions.length),
    el('td', { class: 'hash', title: block.proposer }, short(block.proposer)),
  );
  row.addEventListener('click', () => void showBlock(block.height));
  return row;
}

let shownHeight = -1;

function addHead(block: Block): void {
  if (block.height <= shownHeight) return;
  shownHeight = block.height;
  section('head').textContent = `height ${block.height} · ${short(block.hash)}`;
  const body = section('block-rows');
  body.prepend(blockRow(block));
  while (body.children.length > RECENT) body.lastElementChild!.remove();
}

async function loadRecent(): Promise<void> {
  const head = await call<number>('chain_blockNumber');
  const from = Math.max(0, head - RECENT + 1);
  for (let height = Math.max(from, shownHeight + 1); height <= head; height++) {
    const block = await call<Block | null>('chain_getBlockByNumber', [height, false]);
    if (block) addHead(block);
  }
}

function txView(tx: Tx, receipt: Receipt | null): HTMLElement {
  const call_ = tx.sealed
    ? el('span', { class: 'sealed' }, `sealed payload: ${base64Bytes(tx.sealed.ct)} bytes of ciphertext (${short(tx.sealed.ct)})`)
    : el('span', {}, `${tx.method ?? ''}(${(tx.args ?? []).map(json).join(', ')})`);
  const status = receipt ? el('span', { class: `status ${receipt.status}` }, receipt.status) : el('span', {}, 'pending');
  const outcome = !receipt
    ? el('span')
    : receipt.sealed !== undefined
      ? el('span', { class: 'sealed' }, `sealed answer: ${base64Bytes(receipt.sealed)} bytes of ciphertext`)
      : el('span', {}, receipt.error ? `${receipt.error.code}: ${receipt.error.message}` : `result ${json(receipt.result)}`);
  const events = el('ul', { class: 'events' }, ...(receipt?.events ?? []).map((e) => el('li', {}, `${e.contract}.${e.name} ${json(e.data)}`)));
  const verdict = el('span', { class: 'verdict' });
  const verify = el('button', { type: 'button', class: 'verify', title: 'Verify the receipt proof in this page, with the verifier of cloister receipt verify' }, 'Verify');
  verify.addEventListener('click', () => {
    verdict.textContent = '…';
    void verifyReceiptInPage(tx.hash).then((text) => (verdict.textContent = text));
  });
  return el(
    'li',
    { class: 'tx', 'data-tx': tx.hash },
    el('div', {}, el('span', { class: 'hash' }, tx.hash), ' ', status),
    el('div', {}, `${tx.contract} · `, call_, ` · from ${short(tx.from)} nonce ${tx.nonce}`),
    el('div', {}, outcome, receipt ? ` · gas ${receipt.gasUsed}` : ''),
    events,
    el('div', {}, verify, ' ', verdict),
  );
}

async function showBlock(height: number): Promise<void> {
  const block = await call<Block | null>('chain_getBlockByNumber', [height, true]);
  if (!block) return replace('block', `no block ${height}`);
  const txs = block.transactions as Tx[];
  const receipts = await Promise.all(txs.map((tx) => call<Receipt | null>('chain_getTransactionReceipt', [tx.hash])));
  replace(
    'block',
    el('h3', {}, `Block ${block.height}`),
    el('div', { class: 'hash' }, block.hash),
    el('div', {}, `${new Date(block.time).toISOString()} · proposer ${short(block.proposer)} · ${txs.length} transactions`),
    el('ul', { class: 'txs' }, ...txs.map((tx, i) => txView(tx, receipts[i] ?? null))),
  );
}

async function loadContracts(): Promise<void> {
  const contracts = await call<{ name: string; measurement: string }[]>('contract_list');
  replace('contracts', el('table', {}, ...contracts.map((c) => el('tr', {}, el('td', {}, c.name), el('td', { class: 'hash' }, c.measurement)))));
}

interface LedgerAttestation {
  nodeId: string;
  attestation: { height: number; time: number; platform: string; measurement: string } | null;
}

async function loadValidators(): Promise<void> {
  const [nodes, onLedger] = await Promise.all([
    call<{ id: string; admitted: boolean; connected: boolean; self?: boolean; measurement?: string; reason?: { code: string } }[]>('net_nodes'),
    call<{ result: LedgerAttestation[] }>('chain_call', ['consortium', 'attestations', []]),
  ]);
  const evidence = new Map(onLedger.result.map((v) => [v.nodeId, v.attestation]));
  replace(
    'validators',
    el(
      'table',
      {},
      el('tr', {}, el('th', {}, 'node'), el('th', {}, 'admission'), el('th', {}, 'measurement'), el('th', {}, 'last evidence on the ledger')),
      ...nodes.map((n) => {
        const last = evidence.get(n.id);
        return el(
          'tr',
          { 'data-node': n.id },
          el('td', { class: 'hash' }, short(n.id)),
          el('td', {}, n.self ? 'this node' : n.admitted ? 'admitted' : `refused${n.reason ? ` (${n.reason.code})` : ''}${n.connected ? '' : ', disconnected'}`),
          el('td', { class: 'hash' }, n.measurement ?? '–'),
          el('td', { class: 'evidence' }, last ? `block ${last.height}, ${new Date(last.time).toISOString()} (${last.platform} ${short(last.measurement)})` : evidence.has(n.id) ? 'none yet' : 'not a validator now'),
        );
      }),
    ),
  );
}

async function loadProposals(): Promise<void> {
  const proposals = await call<{ id: number; proposer: string; state: string; approvals: number; rejections: number; required: number; votes: Record<string, boolean>; actions: { type: string }[] }[]>(
    'gov_listProposals',
    [null, 20],
  );
  replace(
    'proposals',
    proposals.length === 0
      ? 'none'
      : el(
          'table',
          {},
          ...proposals.map((p) =>
            el(
              'tr',
              {},
              el('td', {}, `#${p.id}`),
              el('td', {}, p.state),
              el('td', {}, p.actions.map((a) => a.type).join(', ')),
              el('td', {}, `by ${p.proposer}`),
              el('td', {}, `${p.approvals}/${p.required} for, ${p.rejections} against`),
              el('td', {}, Object.entries(p.votes).map(([member, approve]) => `${member}: ${approve ? 'yes' : 'no'}`).join(', ')),
            ),
          ),
        ),
  );
}

function settle(task: Promise<void>, id: string): void {
  task.catch((err: unknown) => replace(id, `could not load: ${(err as Error).message}`));
}

settle(loadRecent(), 'head');
settle(loadContracts(), 'contracts');
settle(loadValidators(), 'validators');
settle(loadProposals(), 'proposals');
followHeads(
  (block) => {
    addHead(block as Block);
    // Admission and the ledger's evidence change rarely: looked at again every few blocks.
    if ((block as Block).height % VALIDATORS_EVERY === 0) settle(loadValidators(), 'validators');
  },
  (state) => (section('live').textContent = state),
  () => settle(loadRecent(), 'head'),
);
