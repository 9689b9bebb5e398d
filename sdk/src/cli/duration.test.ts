import { describe, expect, it } from "vitest";
import { parseDurationMs, parseDurationSeconds, parseTimeMs } from "./duration.js";

describe("parseDurationMs", () => {
  it.each([
    ["90s", 90_000],
    ["15m", 900_000],
    ["1h", 3_600_000],
    ["12h", 43_200_000],
    ["1h30m", 5_400_000],
    ["2d", 172_800_000],
    ["500ms", 500],
    [" 5m ", 300_000],
  ])("%s", (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(["", "10", "h", "1x", "1.5h", "-5m", "1h foo", "m1"])("rejects %j", (text) => {
    expect(() => parseDurationMs(text, "--ttl")).toThrow(/invalid --ttl/);
  });
});

describe("parseDurationSeconds", () => {
  it("converts to seconds", () => {
    expect(parseDurationSeconds("12h")).toBe(43_200);
  });
  it("rejects fractions of a second", () => {
    expect(() => parseDurationSeconds("1500ms")).toThrow(/whole seconds/);
  });
});

describe("parseTimeMs", () => {
  const now = Date.parse("2026-11-27T07:00:00.000Z");
  it("treats a duration as that long ago", () => {
    expect(new Date(parseTimeMs("15m", now)).toISOString()).toBe("2026-11-27T06:45:00.000Z");
  });
  it("accepts ISO 8601", () => {
    expect(parseTimeMs("2026-11-26T10:00:00Z", now)).toBe(Date.parse("2026-11-26T10:00:00Z"));
  });
  it("rejects anything else", () => {
    expect(() => parseTimeMs("yesterday", now, "--since")).toThrow(/invalid --since "yesterday"/);
  });
});
