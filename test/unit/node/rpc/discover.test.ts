import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RPC_METHOD_NAMES } from '../../../../node/client/index.js';
import {
  MethodTable,
  RPC_ERRORS,
  chainMethods,
  defineMethod,
  type OpenRpcDocument,
} from '../../../../node/rpc/index.js';
import {
  CALL_RESULT,
  CONTRACTS,
  EVIDENCE,
  ENCRYPTION_KEY,
  GENESIS,
  SEALED_CALL_RESULT,
  SEALED_RECEIPT,
  SEALED_TX_VIEW,
  TOKEN,
  FakeApi,
  NODES,
  MEMBERS,
  CHAIN_VIEW,
  PROPOSAL,
  RECEIPT,
  RECEIPT_PROOF,
  STATE_PROOF,
  STATUS,
  TX_VIEW,
  VIEW_TRANSITION,
  blockView,
  h,
  rpc,
  startServer,
  type Harness,
} from './fixtures.js';

let t: Harness;
let doc: OpenRpcDocument;
beforeAll(async () => {
  t = await startServer();
  doc = ((await rpc(t.url, { jsonrpc: '2.0', id: 1, method: 'rpc.discover' })).json as { result: OpenRpcDocument }).result;
});
afterAll(async () => {
  await t.server.stop();
});

describe('rpc.discover', () => {
  it('returns an OpenRPC 1.2.6 document listing every method, itself included', () => {
    expect(doc.openrpc).toBe('1.2.6');
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(doc.methods.map((m) => m.name)).toEqual([...RPC_METHOD_NAMES]);
    expect(doc.methods.map((m) => m.name)).toEqual(t.server.table.names());
  });

  it('gives every method a summary, param schemas and a result schema', () => {
    for (const method of doc.methods) {
      expect(method.summary.length, method.name).toBeGreaterThan(0);
      expect(method.paramStructure).toBe('either');
      expect(method.result.name.length).toBeGreaterThan(0);
      expect(method.result.schema).toBeTypeOf('object');
      for (const param of method.params) {
        expect(param.schema, `${method.name}.${param.name}`).toBeTypeOf('object');
        expect(typeof param.required).toBe('boolean');
      }
    }
    const call = doc.methods.find((m) => m.name === 'chain_call')!;
    expect(call.params.map((p) => [p.name, p.required])).toEqual([
      ['contract', true],
      ['method', true],
      ['args', false],
      ['auth', false],
    ]);
    const send = doc.methods.find((m) => m.name === 'chain_sendTransaction')!;
    expect(send.errors.map((e) => e.code)).toContain(RPC_ERRORS.TX_NONCE_GAP.code);
    expect(send.errors.map((e) => e.code)).toContain(-32602);
  });

  it('documents the full error table', () => {
    expect(doc['x-error-codes'].map((e) => e.name)).toEqual(Object.keys(RPC_ERRORS));
    expect(doc['x-error-codes'].find((e) => e.name === 'REQUEST_TOO_LARGE')).toMatchObject({ code: -32001, httpStatus: 413 });
  });

  it('result schemas describe what the methods return', () => {
    const ajv = new Ajv({ strict: true });
    const samples: Record<string, unknown[]> = {
      chain_blockNumber: [0, 5],
      chain_getBlockByNumber: [blockView(false), blockView(true), null],
      chain_getBlockByHash: [blockView(false), null],
      chain_sendTransaction: [h('c')],
      chain_getTransaction: [TX_VIEW, { ...TX_VIEW, blockHeight: null, blockHash: null, index: null }, SEALED_TX_VIEW, null],
      chain_getTransactionReceipt: [RECEIPT, { ...RECEIPT, status: 'failed', error: { code: 'X', message: 'y' } }, SEALED_RECEIPT, null],
      chain_getReceiptProof: [RECEIPT_PROOF, null],
      chain_getStateProof: [STATE_PROOF, { ...STATE_PROOF, value: null }],
      chain_getViewTransitions: [[VIEW_TRANSITION], []],
      chain_getNonce: [0],
      chain_call: [CALL_RESULT, SEALED_CALL_RESULT],
      tee_getEncryptionKey: [ENCRYPTION_KEY],
      tee_getEvidence: [EVIDENCE],
      chain_getGenesis: [GENESIS],
      tee_getAttestationToken: [TOKEN],
      contract_list: [CONTRACTS, []],
      node_status: [STATUS, { ...STATUS, consensus: { height: 2, round: 0, step: 'propose' }, validators: 4, connectedPeers: 3, admittedPeers: 2, syncing: false, secrets: { held: [1], missing: [] } }],
      net_nodes: [NODES, []],
      gov_members: [MEMBERS],
      gov_chainView: [CHAIN_VIEW],
      gov_getProposal: [PROPOSAL, (({ closedAt: _c, failure: _f, ...open }) => ({ ...open, state: 'open' }))(PROPOSAL)],
      gov_listProposals: [[PROPOSAL], []],
      chain_subscribe: ['0123456789abcdef0123456789abcdef'],
      chain_unsubscribe: [true, false],
    };
    for (const method of doc.methods) {
      if (method.name === 'rpc.discover') continue;
      const validate = ajv.compile(method.result.schema as object);
      for (const sample of samples[method.name] ?? []) expect(validate(sample), `${method.name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
      expect(samples[method.name], method.name).toBeDefined();
    }
    expect(ajv.compile(doc.methods.find((m) => m.name === 'chain_getNonce')!.result.schema as object)(-1)).toBe(false);
  });
});

describe('MethodTable', () => {
  const extra = defineMethod({
    name: 'gov_members',
    summary: 'A later family.',
    params: [{ name: 'limit', schema: { type: 'integer', minimum: 1 }, required: false }],
    result: { name: 'members', schema: { type: 'array' } },
    handler: (limit?: number) => Array.from({ length: limit ?? 1 }, (_, i) => i),
  });

  it('is extended by passing more methods, which rpc.discover then lists', () => {
    const table = new MethodTable([...chainMethods(new FakeApi()), extra]);
    expect(table.names()).toContain('gov_members');
    expect(table.document.methods.map((m) => m.name)).toContain('gov_members');
    expect(table.get('gov_members')?.bind([2])).toEqual([2]);
  });

  it('refuses duplicate names, reserved rpc.* names and a required param after an optional one', () => {
    expect(() => new MethodTable([extra, extra])).toThrow(/duplicate/);
    expect(() => new MethodTable([{ ...extra, name: 'rpc.mine' }])).toThrow(/reserved/);
    expect(
      () =>
        new MethodTable([
          {
            ...extra,
            params: [
              { name: 'a', schema: {}, required: false },
              { name: 'b', schema: {} },
            ],
          },
        ]),
    ).toThrow(/follows an optional/);
  });

  it('refuses an invalid param schema when it is built, not when called', () => {
    expect(() => new MethodTable([{ ...extra, params: [{ name: 'x', schema: { type: 'integr' } }] }])).toThrow();
  });
});
