import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AuditEvent, AuditFilterSchema } from "@tollgate/proto";

/** A filter as the query takes it (every field optional). */
export type AuditFilterInit = MessageInitShape<typeof AuditFilterSchema>;

import { createControlPlaneClient } from "@tollgate/sdk";
import type { DevInstance } from "./dev-instance.js";

export function adminClient(dev: DevInstance) {
  const token = readFileSync(join(dev.home, "admin.token"), "utf8").trim();
  return createControlPlaneClient({ baseUrl: dev.apiUrl, token });
}

/** Queries all pages for a filter. */
export async function queryAll(dev: DevInstance, filter: AuditFilterInit): Promise<AuditEvent[]> {
  const client = adminClient(dev);
  const out: AuditEvent[] = [];
  let pageToken = "";
  do {
    const res = await client.audit.queryEvents({ filter, pageSize: 200, pageToken });
    out.push(...res.events);
    pageToken = res.nextPageToken;
  } while (pageToken !== "");
  return out;
}

/** Polls until at least `count` events match, then waits `settleMs` more and returns them all. */
export async function waitForEvents(
  dev: DevInstance,
  filter: AuditFilterInit,
  count: number,
  { timeoutMs = 15_000, settleMs = 750 } = {},
): Promise<AuditEvent[]> {
  const deadline = Date.now() + timeoutMs;
  let events: AuditEvent[] = [];
  while (Date.now() < deadline) {
    events = await queryAll(dev, filter);
    if (events.length >= count) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, settleMs));
  return queryAll(dev, filter);
}

/** Counts events by eventName. */
export function countByName(events: AuditEvent[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of events) counts[e.eventName] = (counts[e.eventName] ?? 0) + 1;
  return counts;
}
