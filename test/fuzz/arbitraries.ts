/**
 * What a stranger can send, as fast-check arbitraries: protobuf messages of any type in
 * the contract (built by reflection from `proto/`, so a new message is fuzzed the day it
 * is added), those messages' bytes mangled, plain garbage, and JSON of any shape.
 *
 * Strings lean towards ids the demo node knows (its devices, rooms, hall), so a share of
 * the cases passes the first checks and reaches the code behind them.
 *
 * @example
 *   const [bytes] = fc.sample(envelopeBytes(), { numRuns: 1, seed: 7 });
 */
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import fc from "fast-check";
import protobuf from "protobufjs";
import { repoRoot } from "../fixtures/processes.ts";

const protoDir = path.join(repoRoot, "proto");

function loadContract(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    const candidate = path.resolve(protoDir, target);
    return existsSync(candidate) ? candidate : protobuf.util.path.resolve(origin, target);
  };
  const dir = path.join(protoDir, "tsunagi", "v1");
  root.loadSync(readdirSync(dir).filter((f) => f.endsWith(".proto")).map((f) => path.join(dir, f)));
  root.resolveAll();
  return root;
}

export const contract = loadContract();
export const EnvelopeType = contract.lookupType("tsunagi.v1.Envelope");

/** Ids worth hitting: the demo's devices, rooms and hall, and near misses of them. */
export const KNOWN_WORDS = ["excavator-1", "drone-1", "teleop-demo", "demo-hall", "fuzz-session", "boom", "stick", "bucket",
  "swing", "track_left", "throttle", "yaw", "pitch", "roll", "takeoff", "land", "visitor", "host", "operator", "supervisor",
  "admin", "excavator-2", "", " ", "../", "\u0000", "%s", "a".repeat(300)];

const text = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...KNOWN_WORDS) },
  { weight: 2, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 80 }) },
);

const int32 = fc.oneof(fc.integer({ min: -5, max: 100 }), fc.integer());
const uint32 = fc.oneof(fc.nat({ max: 100 }), fc.nat({ max: 0xffffffff }));
/** 64-bit values as decimal strings, which protobufjs' fromObject takes for every 64-bit type. */
const int64 = fc.oneof(fc.bigInt({ min: -5n, max: 1000n }), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })).map(String);
const uint64 = fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constant(BigInt(Date.now()))).map(String);
const double = fc.oneof(fc.double({ min: -2, max: 2, noNaN: true }), fc.double(), fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 1e308));

function scalar(type: string): fc.Arbitrary<unknown> | undefined {
  switch (type) {
    case "double": case "float": return double;
    case "int32": case "sint32": case "sfixed32": return int32;
    case "uint32": case "fixed32": return uint32;
    case "int64": case "sint64": case "sfixed64": return int64;
    case "uint64": case "fixed64": return uint64;
    case "bool": return fc.boolean();
    case "string": return text;
    case "bytes": return fc.uint8Array({ maxLength: 64 });
    default: return undefined;
  }
}

const cache = new Map<string, fc.Arbitrary<Record<string, unknown>>>();

function fieldValue(field: protobuf.Field, depth: number): fc.Arbitrary<unknown> {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    return fc.oneof(fc.constantFrom(...Object.values(resolved.values)), fc.integer({ min: -3, max: 100_000 }));
  }
  if (resolved instanceof protobuf.Type) return depth > 3 ? fc.constant({}) : messageObject(resolved, depth + 1);
  return scalar(field.type) ?? fc.constant(undefined);
}

/** A plain object of `type`'s shape, for `type.fromObject`: any subset of fields, at most one member of each oneof. */
export function messageObject(type: protobuf.Type, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const key = `${type.fullName}@${depth}`;
  const known = cache.get(key);
  if (known) return known;
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  const oneofMembers = new Set(type.oneofsArray.flatMap((o) => o.fieldsArray.map((f) => f.name)));
  for (const field of type.fieldsArray) {
    if (oneofMembers.has(field.name)) continue;
    const value = fieldValue(field, depth);
    parts[field.name] = field.map
      ? fc.dictionary(fc.string({ maxLength: 12 }), value, { maxKeys: 4 })
      : field.repeated ? fc.array(value, { maxLength: 6 }) : value;
  }
  const plain = fc.record(parts, { requiredKeys: [] });
  const oneofs = type.oneofsArray.map((oneof) => fc.option(fc.oneof(...oneof.fieldsArray.map((field) =>
    fieldValue(field, depth).map((value) => [field.name, value] as const))), { nil: undefined }));
  const arbitrary = fc.tuple(plain, ...oneofs).map(([fields, ...chosen]) => {
    const object: Record<string, unknown> = { ...fields };
    for (const member of chosen) if (member) object[member[0]] = member[1];
    return object;
  });
  cache.set(key, arbitrary);
  return arbitrary;
}

/** Encodes a generated object; values protobufjs itself cannot encode come out as an empty message. */
function encode(type: protobuf.Type, object: Record<string, unknown>): Uint8Array {
  try {
    return type.encode(type.fromObject(object)).finish();
  } catch {
    return new Uint8Array(0);
  }
}

/** A well-formed Envelope of any body, with random contents. */
export function wellFormedEnvelope(): fc.Arbitrary<Uint8Array> {
  return messageObject(EnvelopeType).map((object) => encode(EnvelopeType, object));
}

/** Byte-level damage to a valid frame: flipped, truncated, spliced, repeated, or a lying length prefix. */
export function mangled(bytes: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(bytes, fc.nat(), fc.nat({ max: 255 }), fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.integer({ min: 0, max: 4 }))
    .map(([frame, at, byte, extra, how]) => {
      const index = frame.length ? at % frame.length : 0;
      switch (how) {
        case 0: { const out = Uint8Array.from(frame); if (out.length) out[index] ^= byte || 1; return out; }
        case 1: return frame.slice(0, index);
        case 2: return Uint8Array.from([...frame.slice(0, index), ...extra, ...frame.slice(index)]);
        case 3: return Uint8Array.from([...frame, ...frame]);
        default: return Uint8Array.from([...frame.slice(0, index), 0xff, 0xff, 0xff, 0xff, 0x0f, ...frame.slice(index)]);
      }
    });
}

/** Anything at all: well-formed envelopes, damaged ones, and garbage, weighted towards the first. */
export function envelopeBytes(): fc.Arbitrary<Uint8Array> {
  const valid = wellFormedEnvelope();
  return fc.oneof(
    { weight: 5, arbitrary: valid },
    { weight: 3, arbitrary: mangled(valid) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 512 }) },
  );
}

/** JSON of any shape, and objects that use the option names the rooms read, with values of any type. */
export function jsonPayload(optionNames: readonly string[] = []): fc.Arbitrary<unknown> {
  const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 3 }), text, double.filter(Number.isFinite));
  const named = optionNames.length
    ? fc.dictionary(fc.constantFrom(...optionNames), anyValue, { maxKeys: optionNames.length })
    : fc.object({ maxDepth: 2 });
  return fc.oneof({ weight: 3, arbitrary: named }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) });
}
