import type { DescField, DescMessage, MessageShape } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";

/**
 * A faster `fromJsonString(schema, json, { ignoreUnknownFields: true })` for JSON exactly as
 * `toJsonString` writes it. Returns the same message `fromJsonString` would (same fields, values
 * and key order), or `undefined` whenever the input is anything but that canonical form, and the
 * caller then runs `fromJsonString` itself. It never throws for bad input: everything
 * `fromJsonString` would reject (or treat specially) is handed back to it.
 *
 * What it takes: the string must be what `JSON.stringify` gives for its own parse (so no
 * duplicate keys, which `JSON.parse` would silently merge and `fromJsonString` rejects), with no
 * surrogate code units (`fromJsonString` rejects lone ones) and no `"__proto__"` key. Fields by
 * their JSON name only; no nulls; string, bool, double, int32 (JSON numbers), int64 and uint64
 * (decimal strings), enums by value name, messages, repeated messages and google.protobuf.Struct
 * fields (kept as the parsed JSON object, which is how `fromJson` represents them). Proto3 files
 * only. Anything else (unknown keys, other well-known types, maps, oneofs, repeated scalars,
 * numbers given as strings, ...) is declined.
 */
export function fastFromJson<Desc extends DescMessage>(schema: Desc, json: string): MessageShape<Desc> | undefined {
  if (DECLINE_TEXT.test(json)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (JSON.stringify(parsed) !== json) return undefined;
  try {
    return readMessage(schema, parsed) as MessageShape<Desc>;
  } catch (err) {
    if (err === DECLINED) return undefined;
    throw err;
  }
}

/** Surrogates (raw or escaped), and `__proto__` keys, which objects do not hold as data. */
const DECLINE_TEXT = /[\ud800-\udfff]|\\u[dD][89abAB]|"__proto__"/;

/** Thrown inside to decline; never escapes {@link fastFromJson}. */
const DECLINED = Symbol("declined");

function decline(): never {
  throw DECLINED;
}

const EDITION_PROTO3 = 999;
// FeatureSet.FieldPresence
const IMPLICIT = 2;
/** Deepest JSON nesting taken inside a Struct field (`fromJson` stops at 100 levels in all). */
const MAX_STRUCT_DEPTH = 32;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const DECIMAL = /^-?(?:0|[1-9][0-9]*)$/;

interface Plan {
  /** Members that `create()` sets on a zero message, in order, with their zero values. */
  zero: { localName: string; value: () => unknown }[];
  /** Fields by JSON name. */
  byJsonName: Map<string, DescField>;
  /** Enum value numbers by name, per enum field. */
  enumValues: Map<DescField, Map<string, number>>;
}

const plans = new WeakMap<DescMessage, Plan>();

function planFor(desc: DescMessage): Plan {
  let plan = plans.get(desc);
  if (plan !== undefined) return plan;
  if (desc.file.edition !== EDITION_PROTO3) decline();
  plan = { zero: [], byJsonName: new Map(), enumValues: new Map() };
  for (const member of desc.members) {
    // A zero message as create() makes it for proto3: oneofs and implicit-presence fields set.
    if (member.kind === "oneof") decline();
    if (member.presence === IMPLICIT) plan.zero.push({ localName: member.localName, value: zeroOf(member) });
  }
  for (const f of desc.fields) {
    plan.byJsonName.set(f.jsonName, f);
    if (f.fieldKind === "enum") plan.enumValues.set(f, new Map(f.enum.values.map((v) => [v.name, v.number])));
  }
  plans.set(desc, plan);
  return plan;
}

function zeroOf(f: DescField): () => unknown {
  switch (f.fieldKind) {
    case "list":
      return () => [];
    case "enum": {
      const first = f.enum.values[0]?.number ?? 0;
      return () => first;
    }
    case "scalar":
      switch (f.scalar) {
        case ScalarType.STRING:
          return () => "";
        case ScalarType.BOOL:
          return () => false;
        case ScalarType.DOUBLE:
        case ScalarType.INT32:
          return () => 0;
        case ScalarType.INT64:
        case ScalarType.UINT64:
          if (f.longAsString) decline();
          return () => 0n;
        default:
          return decline();
      }
    default:
      return decline();
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function readMessage(desc: DescMessage, json: unknown): Record<string, unknown> {
  if (!isPlainObject(json)) decline();
  const plan = planFor(desc);
  const msg: Record<string, unknown> = { $typeName: desc.typeName };
  for (const z of plan.zero) msg[z.localName] = z.value();
  for (const key of Object.keys(json)) {
    const f = plan.byJsonName.get(key);
    const v = json[key];
    if (f === undefined || v === null) decline();
    msg[f.localName] = readField(plan, f, v);
  }
  return msg;
}

function readField(plan: Plan, f: DescField, v: unknown): unknown {
  switch (f.fieldKind) {
    case "scalar":
      return readScalar(f.scalar, v);
    case "enum": {
      if (typeof v !== "string") decline();
      const n = plan.enumValues.get(f)?.get(v);
      if (n === undefined) decline();
      return n;
    }
    case "message": {
      const type = f.message.typeName;
      if (type === "google.protobuf.Struct") {
        if (!isPlainObject(v)) decline();
        checkStruct(v, 1);
        return v;
      }
      if (type.startsWith("google.protobuf.")) decline();
      return readMessage(f.message, v);
    }
    case "list": {
      if (f.listKind !== "message" || f.message.typeName.startsWith("google.protobuf.") || !Array.isArray(v)) {
        decline();
      }
      const out: unknown[] = [];
      for (const item of v) out.push(readMessage(f.message, item));
      return out;
    }
    default:
      return decline();
  }
}

function readScalar(type: ScalarType, v: unknown): unknown {
  switch (type) {
    case ScalarType.STRING:
      if (typeof v !== "string") decline();
      return v;
    case ScalarType.BOOL:
      if (typeof v !== "boolean") decline();
      return v;
    case ScalarType.DOUBLE:
      if (typeof v !== "number") decline();
      return v;
    case ScalarType.INT32:
      if (typeof v !== "number" || !Number.isInteger(v) || v > 0x7fffffff || v < -0x80000000) decline();
      return v;
    case ScalarType.INT64: {
      if (typeof v !== "string" || !DECIMAL.test(v)) decline();
      const n = BigInt(v);
      if (n < INT64_MIN || n > INT64_MAX) decline();
      return n;
    }
    case ScalarType.UINT64: {
      if (typeof v !== "string" || !DECIMAL.test(v) || v.startsWith("-")) decline();
      const n = BigInt(v);
      if (n > UINT64_MAX) decline();
      return n;
    }
    default:
      return decline();
  }
}

/** A Struct's JSON is taken as it is (any JSON value), up to {@link MAX_STRUCT_DEPTH} levels. */
function checkStruct(v: unknown, depth: number): void {
  if (typeof v !== "object" || v === null) return;
  if (depth > MAX_STRUCT_DEPTH) decline();
  if (Array.isArray(v)) {
    for (const item of v) checkStruct(item, depth + 1);
  } else {
    for (const key of Object.keys(v)) checkStruct((v as Record<string, unknown>)[key], depth + 1);
  }
}
