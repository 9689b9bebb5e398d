import { randomFillSync } from "node:crypto";

/**
 * Audit event ids: UUID version 7 (RFC 9562): a 48-bit Unix time in milliseconds, then 74
 * random bits. They sort by time, so where they are indexed (the control plane's unique
 * `event_id` index and its `(arn, event_id)` resource index) a new event lands on the last
 * page instead of a random one: with random (version 4) ids every indexed event dirtied pages
 * of its own, ≈ 26 KB of SQLite writes per event at a few thousand events per second. The
 * random part keeps them unguessable and unique across edges; ids from the same millisecond are
 * not ordered among themselves (nothing relies on it: events carry their own chain sequence).
 */

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Random bytes drawn in bulk: one `randomFillSync` per 256 ids. */
const POOL = Buffer.allocUnsafe(10 * 256);
let poolAt = POOL.length;

/** A new audit event id (UUID v7, lower-case, `8-4-4-4-12`). `nowMs` is for tests. */
export function newEventId(nowMs: number = Date.now()): string {
  if (poolAt + 10 > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const r = POOL;
  const at = poolAt;
  poolAt += 10;
  // 48-bit big-endian milliseconds: the high 16 bits and the low 32 bits.
  const high = Math.floor(nowMs / 0x1_0000_0000) & 0xffff;
  const low = nowMs >>> 0;
  const h = HEX;
  const timeHex =
    (h[(high >>> 8) & 0xff] as string) +
    h[high & 0xff] +
    h[(low >>> 24) & 0xff] +
    h[(low >>> 16) & 0xff] +
    "-" +
    h[(low >>> 8) & 0xff] +
    h[low & 0xff];
  // Version 7 in the high nibble of byte 6, variant 0b10 in the high bits of byte 8.
  const version = h[0x70 | ((r[at] as number) & 0x0f)] as string;
  const variant = h[0x80 | ((r[at + 2] as number) & 0x3f)] as string;
  return `${timeHex}-${version}${hexAt(at + 1)}-${variant}${hexAt(at + 3)}-${hexAt(at + 4)}${hexAt(at + 5)}${hexAt(at + 6)}${hexAt(at + 7)}${hexAt(at + 8)}${hexAt(at + 9)}`;
}

/** Two hex digits of one pool byte (no closure per id: this runs once per request). */
function hexAt(i: number): string {
  return HEX[POOL[i] as number] as string;
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The millisecond time of a {@link newEventId} id, or undefined for any other string. */
export function eventIdTimeMs(id: string): number | undefined {
  if (!UUID_V7.test(id)) return undefined;
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
