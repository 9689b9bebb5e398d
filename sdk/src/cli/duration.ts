import { CliError } from "./cli-error.js";

const DURATION = /^(\d+(ms|s|m|h|d))+$/;

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Parses a duration such as `90s`, `15m`, `1h`, `12h`, `1h30m` or `2d` into milliseconds.
 * Every number needs a unit; throws {@link CliError} naming `what` otherwise.
 */
export function parseDurationMs(text: string, what = "duration"): number {
  const trimmed = text.trim();
  const part = /(\d+)(ms|s|m|h|d)/y;
  let total = 0;
  let index = 0;
  while (index < trimmed.length) {
    part.lastIndex = index;
    const match = part.exec(trimmed);
    if (match === null) break;
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
    index = part.lastIndex;
  }
  if (trimmed === "" || index !== trimmed.length) {
    throw new CliError(`invalid ${what} "${text}" (use e.g. 90s, 15m, 1h, 12h)`);
  }
  return total;
}

/** Parses a duration that must be whole seconds (e.g. a credential lifetime). */
export function parseDurationSeconds(text: string, what = "duration"): number {
  const ms = parseDurationMs(text, what);
  if (ms % 1_000 !== 0) throw new CliError(`invalid ${what} "${text}": must be whole seconds`);
  return ms / 1_000;
}

/**
 * Parses a point in time: a duration means that long before `nowMs` (`15m` = 15 minutes ago),
 * anything else must be an ISO 8601 date.
 */
export function parseTimeMs(text: string, nowMs: number, what = "time"): number {
  if (DURATION.test(text.trim())) return nowMs - parseDurationMs(text, what);
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) {
    throw new CliError(`invalid ${what} "${text}" (use a duration such as 15m, or an ISO 8601 time)`);
  }
  return ms;
}
