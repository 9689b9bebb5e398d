/**
 * A minimal CBOR (RFC 8949) decoder for Smithy RPC v2 CBOR request bodies: maps, arrays, text and
 * byte strings (definite and indefinite length), integers, floats, booleans, null/undefined. Tags
 * are skipped (their content is returned). Byte strings become base64 text, as the JSON protocols
 * carry blobs. Bounded: nesting deeper than 256 or any malformed input throws {@link CborError}.
 */

/** Malformed or unsupported CBOR. */
export class CborError extends Error {
  readonly code = "CBOR_MALFORMED";
}

const MAX_DEPTH = 256;
const BREAK = Symbol("break");

/** Decodes exactly one CBOR data item occupying the whole buffer. */
export function decodeCbor(data: Uint8Array): unknown {
  const reader = new Reader(data);
  const value = reader.item(0);
  if (value === BREAK) throw new CborError("unexpected break");
  if (reader.offset !== data.length) throw new CborError("trailing bytes");
  return value;
}

class Reader {
  offset = 0;
  readonly #view: DataView;

  constructor(readonly data: Uint8Array) {
    this.#view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  #need(n: number): void {
    if (this.offset + n > this.data.length) throw new CborError("truncated");
  }

  #byte(): number {
    this.#need(1);
    return this.data[this.offset++] as number;
  }

  #argument(info: number): number {
    if (info < 24) return info;
    let value: number;
    switch (info) {
      case 24:
        return this.#byte();
      case 25:
        this.#need(2);
        value = this.#view.getUint16(this.offset);
        this.offset += 2;
        return value;
      case 26:
        this.#need(4);
        value = this.#view.getUint32(this.offset);
        this.offset += 4;
        return value;
      case 27: {
        this.#need(8);
        const big = this.#view.getBigUint64(this.offset);
        this.offset += 8;
        return Number(big);
      }
      default:
        throw new CborError("bad additional info");
    }
  }

  #bytes(length: number): Uint8Array {
    this.#need(length);
    const out = this.data.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  item(depth: number): unknown {
    if (depth > MAX_DEPTH) throw new CborError("too deep");
    const initial = this.#byte();
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (info === 31) return this.#indefinite(major, depth);
    switch (major) {
      case 0:
        return this.#argument(info);
      case 1:
        return -1 - this.#argument(info);
      case 2:
        return Buffer.from(this.#bytes(this.#argument(info))).toString("base64");
      case 3:
        return Buffer.from(this.#bytes(this.#argument(info))).toString("utf8");
      case 4: {
        const length = this.#argument(info);
        const out: unknown[] = [];
        for (let i = 0; i < length; i++) out.push(this.#value(depth));
        return out;
      }
      case 5: {
        const length = this.#argument(info);
        const out: Record<string, unknown> = {};
        for (let i = 0; i < length; i++) this.#entry(out, depth);
        return out;
      }
      case 6:
        this.#argument(info);
        return this.#value(depth);
      default:
        return this.#simple(info);
    }
  }

  #value(depth: number): unknown {
    const value = this.item(depth + 1);
    if (value === BREAK) throw new CborError("unexpected break");
    return value;
  }

  #entry(out: Record<string, unknown>, depth: number): boolean {
    const key = this.item(depth + 1);
    if (key === BREAK) return false;
    const value = this.#value(depth);
    // defineProperty keeps a "__proto__" key as plain data.
    Object.defineProperty(out, String(key), { value, enumerable: true, writable: true, configurable: true });
    return true;
  }

  #indefinite(major: number, depth: number): unknown {
    switch (major) {
      case 2:
      case 3: {
        const chunks: Uint8Array[] = [];
        for (;;) {
          const initial = this.#byte();
          if (initial === 0xff) break;
          if (initial >> 5 !== major || (initial & 0x1f) === 31) throw new CborError("bad chunk");
          chunks.push(this.#bytes(this.#argument(initial & 0x1f)));
        }
        const joined = Buffer.concat(chunks);
        return major === 2 ? joined.toString("base64") : joined.toString("utf8");
      }
      case 4: {
        const out: unknown[] = [];
        for (;;) {
          const value = this.item(depth + 1);
          if (value === BREAK) return out;
          out.push(value);
        }
      }
      case 5: {
        const out: Record<string, unknown> = {};
        while (this.#entry(out, depth)) {
          // entries are added by #entry
        }
        return out;
      }
      case 7:
        return BREAK;
      default:
        throw new CborError("bad indefinite length");
    }
  }

  #simple(info: number): unknown {
    switch (info) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
      case 23:
        return null;
      case 25: {
        this.#need(2);
        const half = this.#view.getUint16(this.offset);
        this.offset += 2;
        return halfToFloat(half);
      }
      case 26: {
        this.#need(4);
        const value = this.#view.getFloat32(this.offset);
        this.offset += 4;
        return value;
      }
      case 27: {
        this.#need(8);
        const value = this.#view.getFloat64(this.offset);
        this.offset += 8;
        return value;
      }
      default:
        if (info < 24) return null;
        if (info === 24) {
          this.#byte();
          return null;
        }
        throw new CborError("bad simple value");
    }
  }
}

function halfToFloat(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >> 10) & 0x1f;
  const fraction = half & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}
