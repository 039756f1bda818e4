/**
 * Emits protocol-2 pickles from a small description of the value, enough for what `torch.save` writes: ints,
 * strings, bools, None, tuples, dicts (plain or OrderedDict), globals, calls (REDUCE) and persistent ids.
 */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | { readonly tuple: readonly PickleValue[] }
  | { readonly dict: readonly (readonly [PickleValue, PickleValue])[]; readonly ordered?: boolean }
  | { readonly global: readonly [module: string, name: string] }
  | { readonly call: PickleValue; readonly args: readonly PickleValue[] }
  | { readonly persistentId: PickleValue };

/** Python's pickler sets dict items in batches of this many. */
const BATCH = 1000;

export const ORDERED_DICT = { global: ['collections', 'OrderedDict'] } as const;

export function pickle(value: PickleValue): Uint8Array {
  const out: Buffer[] = [Buffer.from([0x80, 2])];
  const op = (...bytes: number[]) => out.push(Buffer.from(bytes));
  const emit = (v: PickleValue): void => {
    if (v === null) op(0x4e);
    else if (typeof v === 'boolean') op(v ? 0x88 : 0x89);
    else if (typeof v === 'number' || typeof v === 'bigint') emitInt(out, v);
    else if (typeof v === 'string') {
      const text = Buffer.from(v, 'utf8');
      const head = Buffer.alloc(5);
      head[0] = 0x58; // BINUNICODE
      head.writeUInt32LE(text.length, 1);
      out.push(head, text);
    } else if ('tuple' in v) {
      const n = v.tuple.length;
      if (n === 0) op(0x29);
      else if (n <= 3) {
        v.tuple.forEach(emit);
        op(0x84 + n); // TUPLE1..TUPLE3
      } else {
        op(0x28);
        v.tuple.forEach(emit);
        op(0x74);
      }
    } else if ('dict' in v) {
      if (v.ordered) emit({ call: ORDERED_DICT, args: [] });
      else op(0x7d); // EMPTY_DICT
      for (let i = 0; i < v.dict.length; i += BATCH) {
        op(0x28);
        for (const [key, value] of v.dict.slice(i, i + BATCH)) {
          emit(key);
          emit(value);
        }
        op(0x75); // SETITEMS
      }
    } else if ('global' in v) out.push(Buffer.from(`c${v.global[0]}\n${v.global[1]}\n`, 'utf8'));
    else if ('call' in v) {
      emit(v.call);
      emit({ tuple: v.args });
      op(0x52); // REDUCE
    } else {
      emit(v.persistentId);
      op(0x51); // BINPERSID
    }
  };
  emit(value);
  op(0x2e); // STOP
  return Buffer.concat(out);
}

function emitInt(out: Buffer[], value: number | bigint): void {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new Error(`pickle: ${value} is not an integer`);
  const n = BigInt(value);
  if (n >= 0n && n < 0x100n) out.push(Buffer.from([0x4b, Number(n)]));
  else if (n >= 0n && n < 0x10000n) out.push(Buffer.from([0x4d, Number(n & 0xffn), Number(n >> 8n)]));
  else if (n >= -(2n ** 31n) && n < 2n ** 31n) {
    const b = Buffer.alloc(5);
    b[0] = 0x4a; // BININT
    b.writeInt32LE(Number(n), 1);
    out.push(b);
  } else {
    // LONG1: little-endian two's complement, as few bytes as keep the sign.
    const bytes: number[] = [];
    for (let rest = n; ; ) {
      const byte = Number(rest & 0xffn);
      bytes.push(byte);
      rest >>= 8n;
      if ((rest === 0n && byte < 0x80) || (rest === -1n && byte >= 0x80)) break;
    }
    out.push(Buffer.from([0x8a, bytes.length, ...bytes]));
  }
}
