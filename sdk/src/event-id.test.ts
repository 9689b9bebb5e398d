import { describe, expect, it } from "vitest";
import { eventIdTimeMs, newEventId } from "./event-id.js";

describe("newEventId", () => {
  it("is a UUID v7 whose first 48 bits are the time in milliseconds", () => {
    const now = Date.UTC(2026, 10, 27, 18, 0, 0, 123);
    const id = newEventId(now);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(id.slice(0, 13)).toBe(`${now.toString(16).padStart(12, "0").slice(0, 8)}-${now.toString(16).slice(-4)}`);
    expect(eventIdTimeMs(id)).toBe(now);
    // Times past 2^32 ms and the largest 48-bit value encode exactly.
    expect(eventIdTimeMs(newEventId(2 ** 48 - 1))).toBe(2 ** 48 - 1);
    expect(eventIdTimeMs(newEventId(0x1_0000_0000))).toBe(0x1_0000_0000);
    expect(eventIdTimeMs(crypto.randomUUID())).toBeUndefined();
  });

  it("sorts by time across milliseconds and stays unique within one", () => {
    const a = newEventId(1_800_000_000_000);
    const b = newEventId(1_800_000_000_001);
    const c = newEventId(1_800_086_400_000);
    expect([c, b, a].sort()).toEqual([a, b, c]);
    const many = new Set(Array.from({ length: 100_000 }, () => newEventId(1_800_000_000_000)));
    expect(many.size).toBe(100_000);
    // The random bits do vary: every hex digit after the version shows up in position 15.
    const digits = new Set([...many].map((id) => id[15]));
    expect(digits.size).toBe(16);
  });
});
