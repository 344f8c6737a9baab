import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcErrorCodes } from '../../../../node/rpc/index.js';
import { findUncarriableNumber, isInexactNumber, parseJsonExact, readsExactly } from '../../../../node/rpc/exact-json.js';
import { inspectPayload } from '../../../../node/rpc/protocol.js';
import { h, post, rpc, startServer, TX, type Harness } from './fixtures.js';

describe('readsExactly', () => {
  it.each([
    '0',
    '7',
    '-7',
    '9007199254740991',
    '-9007199254740991',
    '9007199254740992', // 2^53 is a double exactly
    '1.5',
    '0.1', // written back as 0.1
    '1e2',
    '1E+2',
    '100e-2',
    '1.0',
    '0e5',
    '0.0',
    '12345e-4',
    '1e21',
    '5e-324',
  ])('%s reads exactly', (literal) => {
    expect(readsExactly(literal)).toBe(true);
  });

  it.each([
    '1e309',
    '-1e309',
    '1e400',
    '9007199254740993',
    '123456789012345678901234567890',
    '123456789012345678901234567890e-29',
    '1.0000000000000001',
    '9007199254740990.5',
    '1e-400',
    '-1e-400',
    '-0',
    '-0.0',
    '-0e3',
    '0.10000000000000001',
  ])('%s does not', (literal) => {
    expect(readsExactly(literal)).toBe(false);
  });
});

describe('parseJsonExact', () => {
  it('gives what JSON.parse gives when every number reads exactly', () => {
    const text = '{"a":[1,-2,1.5,0.25,1e2,"1e400","9007199254740993"],"b":{"c":null,"d":true},"__proto__":{"x":1}}';
    expect(parseJsonExact(text)).toStrictEqual(JSON.parse(text));
  });

  it('marks each number that does not read exactly, wherever it is, and nothing else', () => {
    const parsed = parseJsonExact('{"id":9007199254740993,"params":[1e309,{"n":-0,"m":[2,1e-400]},"1e309",3]}') as {
      id: unknown;
      params: [unknown, { n: unknown; m: [number, unknown] }, string, number];
    };
    expect(isInexactNumber(parsed.id)).toBe(true);
    expect(isInexactNumber(parsed.params[0])).toBe(true);
    expect(isInexactNumber(parsed.params[1].n)).toBe(true);
    expect(parsed.params[1].m[0]).toBe(2);
    expect(isInexactNumber(parsed.params[1].m[1])).toBe(true);
    expect(parsed.params[2]).toBe('1e309');
    expect(parsed.params[3]).toBe(3);
    expect((parsed.params[0] as symbol).description).toBe('1e309 would be read as Infinity');
    expect((parsed.id as symbol).description).toBe('9007199254740993 would be read as 9007199254740992');
  });

  it('is not confused by escaped quotes and backslashes in strings', () => {
    const text = JSON.stringify({ s: 'a"b\\', t: '\\"1e400', u: '\\\\' }).slice(0, -1) + ',"v":1e400}';
    const parsed = parseJsonExact(text) as Record<string, unknown>;
    expect(parsed['s']).toBe('a"b\\');
    expect(parsed['t']).toBe('\\"1e400');
    expect(parsed['u']).toBe('\\\\');
    expect(isInexactNumber(parsed['v'])).toBe(true);
  });

  it('throws like JSON.parse on invalid JSON, also where a number sits in a key position', () => {
    for (const text of ['{1e400:1}', '[1.e5]', '{"a":01}', '[-]', '']) expect(() => parseJsonExact(text)).toThrow(SyntaxError);
  });

  it('a client cannot forge a marker with a string', () => {
    const parsed = parseJsonExact('["\\u0000inexact-00000000-0000-0000-0000-000000000000:0",1e400]') as unknown[];
    expect(parsed[0]).toBe('\u0000inexact-00000000-0000-0000-0000-000000000000:0');
    expect(isInexactNumber(parsed[1])).toBe(true);
  });
});

describe('findUncarriableNumber', () => {
  it('finds the first number that is not a safe integer, or a marker, with its JSON pointer', () => {
    expect(findUncarriableNumber({ a: [1, 2, { 'b/c~': 1.5 }] })).toEqual({ path: '/a/2/b~1c~0', reason: '1.5 is not an integer' });
    expect(findUncarriableNumber([2 ** 53])).toEqual({ path: '/0', reason: '9007199254740992 is beyond the safe integer range (±9007199254740991)' });
    expect(findUncarriableNumber(-0)?.reason).toMatch(/-0/);
    expect(findUncarriableNumber({ x: Symbol('1e309 would be read as Infinity') })).toEqual({ path: '/x', reason: '1e309 would be read as Infinity' });
    expect(findUncarriableNumber({ a: [1, -9007199254740991, 'x', null, true, { b: 0 }] })).toBeUndefined();
  });
});

describe('inspectPayload', () => {
  it('tells whether a payload holds only safe integers (then params need no number walk) and whether it nests too deep', () => {
    expect(inspectPayload(parseJsonExact('[{"id":1,"params":[2,{"a":[-3,"1.5"]}]}]'), 8)).toEqual({ tooDeep: false, onlySafeIntegers: true });
    for (const text of ['[{"id":1.5}]', '{"params":[[[1e309]]]}', '{"params":{"x":-0}}', '[9007199254740992]', '1e400']) {
      expect(inspectPayload(parseJsonExact(text), 8).onlySafeIntegers, text).toBe(false);
    }
    expect(inspectPayload(JSON.parse('[[[[1]]]]'), 3).tooDeep).toBe(true);
    expect(inspectPayload(JSON.parse('[[[1]]]'), 3).tooDeep).toBe(false);
  });
});

describe('over JSON-RPC', () => {
  let t: Harness;
  beforeAll(async () => {
    t = await startServer();
  });
  afterAll(async () => {
    await t.server.stop();
  });

  const callWith = (argsText: string, id = 1) =>
    post(t.url, `{"jsonrpc":"2.0","id":${id},"method":"chain_call","params":["counter","get",${argsText}]}`);

  it.each([
    ['1e309', '/0', '1e309 would be read as Infinity'],
    ['1.5', '/0', '1.5 is not an integer'],
    ['9007199254740993', '/0', '9007199254740993 would be read as 9007199254740992'],
    ['1.0000000000000001', '/0', '1.0000000000000001 would be read as 1'],
    ['-0', '/0', '-0 would be read as 0'],
    ['9007199254740992', '/0', '9007199254740992 is beyond the safe integer range (±9007199254740991)'],
  ])('chain_call args [%s] is INVALID_ARGS and never reaches the chain', async (literal, path, reason) => {
    const before = t.api.calls.length;
    const reply = await callWith(`[${literal}]`);
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({
      jsonrpc: '2.0',
      id: 1,
      error: {
        code: RpcErrorCodes.INVALID_ARGS,
        message: `param "args" at ${path}: ${reason}; numbers in params must be safe integers, written exactly`,
        data: { code: 'INVALID_ARGS', param: 'args', path, reason },
      },
    });
    expect(t.api.calls.length).toBe(before);
  });

  it('names the place of a bad number deep in the args', async () => {
    const reply = await callWith('[1, {"a": [2, 1e309]}]');
    expect(reply.json).toMatchObject({ error: { code: RpcErrorCodes.INVALID_ARGS, data: { param: 'args', path: '/1/a/1' } } });
  });

  it('passes the same call with values that are carried exactly', async () => {
    const reply = await callWith('[9007199254740991, -9007199254740991, 0, 1e3, 25.0, [{"x": -1}]]');
    expect(reply.json).toMatchObject({ id: 1, result: { result: 5 } });
    expect(t.api.calls.at(-1)).toEqual({ method: 'call', args: ['counter', 'get', [9007199254740991, -9007199254740991, 0, 1000, 25, [{ x: -1 }]], undefined] });
  });

  it('refuses such numbers in any param of any method, before the schema', async () => {
    const nonce = await post(t.url, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'chain_sendTransaction', params: [TX] }).replace('"nonce":0', '"nonce":1.5'));
    expect(nonce.json).toMatchObject({ id: 2, error: { code: RpcErrorCodes.INVALID_ARGS, data: { param: 'tx', path: '/nonce' } } });
    const height = await post(t.url, '{"jsonrpc":"2.0","id":3,"method":"chain_getBlockByNumber","params":{"height":1.0000000000000001}}');
    expect(height.json).toMatchObject({ id: 3, error: { code: RpcErrorCodes.INVALID_ARGS, data: { param: 'height' } } });
    // Read as 1, the block at height 1 would have been served.
    expect(t.api.calls.some((c) => c.method === 'getBlockByNumber')).toBe(false);
  });

  it('an id that would not be echoed as sent is an invalid request with id null; a fractional id that would is echoed', async () => {
    const big = await post(t.url, '{"jsonrpc":"2.0","id":9007199254740993,"method":"chain_blockNumber"}');
    expect(big.json).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: {
        code: -32600,
        message: 'Invalid Request',
        data: { reason: 'id 9007199254740993 would be read as 9007199254740992, so it could not be echoed as sent' },
      },
    });
    expect((await post(t.url, '{"jsonrpc":"2.0","id":1.5,"method":"chain_blockNumber"}')).json).toEqual({ jsonrpc: '2.0', id: 1.5, result: 1 });
  });

  it('in a batch only the entry with the bad number is refused', async () => {
    const reply = await post(
      t.url,
      `[{"jsonrpc":"2.0","id":1,"method":"chain_getNonce","params":["${h('a')}"]},` +
        '{"jsonrpc":"2.0","id":2,"method":"chain_call","params":["counter","get",[1e309]]},' +
        '{"jsonrpc":"2.0","id":3,"method":"chain_blockNumber"}]',
    );
    expect(reply.json).toMatchObject([{ id: 1, result: 3 }, { id: 2, error: { code: RpcErrorCodes.INVALID_ARGS } }, { id: 3, result: 1 }]);
  });

  it('numbers inside strings are left alone', async () => {
    const reply = await rpc(t.url, { jsonrpc: '2.0', id: 4, method: 'chain_call', params: ['counter', 'get', ['1e309', '-0']] });
    expect(reply.json).toMatchObject({ id: 4, result: { result: 5 } });
  });
});
