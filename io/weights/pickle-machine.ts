/**
 * A Python unpickler for data only (protocols 2 to 5 and the numeric protocol-0 opcodes). It never runs or imports
 * anything: every global the pickle names goes to `resolveGlobal`, which returns a stand-in or refuses, and only
 * stand-ins that implement `PyCallable` can be called (REDUCE, NEWOBJ, INST, OBJ).
 *
 * Python values become: None -> null, bool -> boolean, int -> number (bigint beyond 2^53), float -> number,
 * str -> string, bytes/bytearray -> Uint8Array, list and tuple -> array, dict -> Map, set/frozenset -> Set.
 */
import { WeightFileError } from './errors';

export interface PyCallable {
  readonly qualifiedName: string;
  call(args: unknown[]): unknown;
}

export function isPyCallable(v: unknown): v is PyCallable {
  return typeof v === 'object' && v !== null && typeof (v as PyCallable).call === 'function' && typeof (v as PyCallable).qualifiedName === 'string';
}

/** A stand-in whose state BUILD sets (such as a numpy dtype or array); anything else only a dict may be built. */
export interface PyStateful {
  setState(state: unknown): void;
}

function isPyStateful(v: unknown): v is PyStateful {
  return typeof v === 'object' && v !== null && typeof (v as PyStateful).setState === 'function';
}

export interface UnpickleHooks {
  /** The stand-in for `module.name`; throws to refuse it. */
  resolveGlobal(module: string, name: string): unknown;
  /** The object a persistent id (BINPERSID) refers to. */
  persistentLoad(pid: unknown): unknown;
}

/** Thrown when the pickle continues past the given bytes; callers reading a prefix of a file may retry with more. */
export class TruncatedPickleError extends WeightFileError {}

export interface Unpickled {
  readonly value: unknown;
  /** Position just after the STOP opcode. */
  readonly end: number;
}

const HIGHEST_PROTOCOL = 5;

/** Runs one pickle from `start` in `bytes` to its STOP opcode. `file` names the source in errors. */
export function unpickle(file: string, bytes: Uint8Array, start: number, hooks: UnpickleHooks): Unpickled {
  const data = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = start;

  const fail = (problem: string): never => {
    throw new WeightFileError(file, `corrupt pickle at byte ${pos}: ${problem}`);
  };
  const need = (n: number): number => {
    if (pos + n > bytes.length) throw new TruncatedPickleError(file, `pickle is truncated at byte ${bytes.length}`);
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => bytes[need(1)];
  const u16 = () => data.getUint16(need(2), true);
  const u32 = () => data.getUint32(need(4), true);
  const u64 = () => {
    const n = data.getBigUint64(need(8), true);
    return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : fail(`length ${n} is too large`);
  };
  const take = (n: number) => bytes.slice(need(n), pos);
  const utf8 = (n: number) => new TextDecoder('utf-8').decode(bytes.subarray(need(n), pos));
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new TruncatedPickleError(file, `pickle is truncated at byte ${bytes.length}`);
    const text = new TextDecoder('utf-8').decode(bytes.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const pop = (): unknown => (stack.length > (marks.at(-1) ?? 0) ? stack.pop() : fail('stack underflow'));
  const top = (): unknown => (stack.length > (marks.at(-1) ?? 0) ? stack[stack.length - 1] : fail('stack underflow'));
  const popMark = (): unknown[] => {
    const m = marks.pop() ?? fail('no MARK on the stack');
    return stack.splice(m);
  };
  const memoGet = (i: number) => (memo.has(i) ? memo.get(i) : fail(`memo entry ${i} is not set`));
  const call = (fn: unknown, args: unknown): unknown => {
    if (!isPyCallable(fn)) fail(`cannot call ${describe(fn)}`);
    if (!Array.isArray(args)) fail('call arguments are not a tuple');
    return (fn as PyCallable).call(args as unknown[]);
  };
  const setItems = (target: unknown, items: unknown[]) => {
    if (!(target instanceof Map)) fail(`cannot set items on ${describe(target)}`);
    if (items.length % 2 !== 0) fail('odd number of items for a dict');
    for (let i = 0; i < items.length; i += 2) (target as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const append = (target: unknown, items: unknown[]) => {
    if (!Array.isArray(target)) fail(`cannot append to ${describe(target)}`);
    (target as unknown[]).push(...items);
  };
  const int = (text: string): number | bigint => {
    if (!/^[+-]?\d+$/.test(text)) fail(`bad integer "${text}"`);
    return smallest(BigInt(text));
  };

  for (;;) {
    const opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const protocol = u8();
        if (protocol > HIGHEST_PROTOCOL) fail(`unsupported pickle protocol ${protocol}`);
        break;
      }
      case 0x95: // FRAME: a length we do not need
        need(8);
        break;
      case 0x2e: // STOP
        if (marks.length > 0 || stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`);
        return { value: stack[0], end: pos };
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x49: { // INT (protocol 0; "01"/"00" are True/False)
        const text = line();
        stack.push(text === '01' ? true : text === '00' ? false : int(text));
        break;
      }
      case 0x4c: // LONG (protocol 0)
        stack.push(int(line().replace(/L$/, '')));
        break;
      case 0x4a: // BININT
        stack.push(data.getInt32(need(4), true));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(littleEndianSigned(take(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(littleEndianSigned(take(u32())));
        break;
      case 0x46: { // FLOAT (protocol 0)
        const text = line();
        const value = Number(text);
        if (text.trim() === '' || (Number.isNaN(value) && !/nan/i.test(text))) fail(`bad float "${text}"`);
        stack.push(value);
        break;
      }
      case 0x47: // BINFLOAT: big-endian double
        stack.push(data.getFloat64(need(8), false));
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(u64()));
        break;
      case 0x54: // BINSTRING (Python 2 str, decoded as torch.load does by default)
        stack.push(utf8(data.getInt32(need(4), true)));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(utf8(u8()));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()));
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(take(u64()));
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: { // APPEND
        const item = pop();
        append(top(), [item]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: { // DICT
        const dict = new Map();
        setItems(dict, popMark());
        stack.push(dict);
        break;
      }
      case 0x73: { // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x90: { // ADDITEMS
        const items = popMark();
        const set = top();
        if (!(set instanceof Set)) fail(`cannot add items to ${describe(set)}`);
        for (const item of items) (set as Set<unknown>).add(item);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      case 0x67: // GET
        stack.push(memoGet(Number(int(line()))));
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x70: // PUT
        memo.set(Number(int(line())), top());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x63: { // GLOBAL
        const module = line();
        stack.push(hooks.resolveGlobal(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(hooks.resolveGlobal(module as string, name as string));
        break;
      }
      case 0x69: { // INST
        const module = line();
        const cls = hooks.resolveGlobal(module, line());
        stack.push(call(cls, popMark()));
        break;
      }
      case 0x6f: { // OBJ
        const [cls, ...args] = popMark();
        stack.push(call(cls, args));
        break;
      }
      case 0x52: // REDUCE
      case 0x81: { // NEWOBJ
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        if (!(kwargs instanceof Map) || kwargs.size > 0) fail('keyword arguments are not supported');
        stack.push(call(pop(), args));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const target = top();
        if (isPyStateful(target)) {
          target.setState(state);
          break;
        }
        // A dict subclass's instance attributes (such as a state dict's `_metadata`) carry no tensors: dropped.
        if (!(target instanceof Map) || !(state === null || state instanceof Map || Array.isArray(state))) {
          fail(`cannot set the state of ${describe(target)}`);
        }
        break;
      }
      case 0x51: // BINPERSID
        stack.push(hooks.persistentLoad(pop()));
        break;
      case 0x50: // PERSID
        stack.push(hooks.persistentLoad(line()));
        break;
      default:
        pos = opAt;
        fail(`unsupported opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}

function smallest(n: bigint): number | bigint {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

/** A little-endian two's-complement integer of any length (LONG1, LONG4). */
function littleEndianSigned(b: Uint8Array): number | bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]);
  if (b.length > 0 && b[b.length - 1] & 0x80) n -= 1n << BigInt(8 * b.length);
  return smallest(n);
}

function describe(v: unknown): string {
  if (isPyCallable(v)) return v.qualifiedName;
  if (v instanceof Map) return 'a dict';
  if (Array.isArray(v)) return 'a list or tuple';
  return v === null ? 'None' : typeof v;
}
