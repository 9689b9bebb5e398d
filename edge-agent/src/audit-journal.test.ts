import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AuditJournal, AuditJournalError, crc32, JournalRecordType } from "./audit-journal.js";

const dirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(join(tmpdir(), "tollgate-journal-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function readAll(j: AuditJournal, from = j.startOffset) {
  const out = [];
  let at = from;
  for (;;) {
    const rs = await j.read(at, 1 << 20);
    if (rs.length === 0) return out;
    out.push(...rs);
    at = (rs[rs.length - 1] as { nextOffset: number }).nextOffset;
  }
}

describe("crc32", () => {
  it("matches the IEEE check value", () => {
    expect(crc32(Buffer.from("123456789"))).toBe(0xcbf43926);
  });
});

describe("AuditJournal", () => {
  it("group-commits concurrent appends into far fewer fsyncs, each resolving after its fsync", async () => {
    const j = await AuditJournal.open({ dir: tempDir() });
    const before = j.stats.fsyncs;
    const offsets = await Promise.all(
      Array.from({ length: 500 }, (_, i) => j.append(JournalRecordType.Completion, Buffer.from(`event-${i}`))),
    );
    const syncs = j.stats.fsyncs - before;
    expect(syncs).toBeGreaterThanOrEqual(1);
    expect(syncs).toBeLessThanOrEqual(5);
    expect(new Set(offsets).size).toBe(500);
    for (const off of offsets) expect(off).toBeLessThan(j.durableEnd);
    const records = await readAll(j);
    expect(records[0]?.type).toBe(JournalRecordType.Start);
    expect(records.slice(1).map((r) => r.payload.toString())).toEqual(
      Array.from({ length: 500 }, (_, i) => `event-${i}`),
    );
    await j.close();
  });

  it("writes segments through an O_DSYNC descriptor, also after a rotation", async () => {
    const dir = tempDir();
    const j = await AuditJournal.open({ dir, segmentBytes: 200 });
    /** Open flags of this process's descriptors on files in `dir` (Linux /proc). */
    const flagsOfOpenSegments = () =>
      fs
        .readdirSync("/proc/self/fd")
        .map((fd) => {
          try {
            return { fd, target: fs.readlinkSync(`/proc/self/fd/${fd}`) };
          } catch {
            return { fd, target: "" };
          }
        })
        .filter((e) => e.target.startsWith(dir) && e.target.endsWith(".wal"))
        .map((e) => {
          const m = /^flags:\s+([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${e.fd}`, "utf8"));
          return Number.parseInt(m?.[1] ?? "0", 8);
        });
    const before = flagsOfOpenSegments();
    expect(before).toHaveLength(1);
    for (const f of before) expect(f & fs.constants.O_DSYNC).toBe(fs.constants.O_DSYNC);
    for (let i = 0; i < 5; i++) await j.append(JournalRecordType.Intent, Buffer.alloc(100));
    expect(fs.readdirSync(dir).filter((n) => n.endsWith(".wal")).length).toBeGreaterThan(1);
    const after = flagsOfOpenSegments();
    expect(after).toHaveLength(1);
    for (const f of after) expect(f & fs.constants.O_DSYNC).toBe(fs.constants.O_DSYNC);
    await j.close();
  });

  it("truncates a torn tail on open and keeps every whole record", async () => {
    const dir = tempDir();
    const j = await AuditJournal.open({ dir });
    await j.append(JournalRecordType.Intent, Buffer.from("one"));
    await j.append(JournalRecordType.Completion, Buffer.from("two"));
    const end = j.durableEnd;
    await j.close();
    const seg = join(dir, fs.readdirSync(dir).find((n) => n.endsWith(".wal")) as string);
    // A crash mid-write: half a header and body of a third record.
    fs.appendFileSync(seg, Buffer.from([0, 0, 0, 50, 1, 2, 3, 4, 1, 0x61, 0x62]));
    const j2 = await AuditJournal.open({ dir });
    expect(j2.stats.truncatedBytes).toBe(11);
    const records = await readAll(j2);
    expect(records.map((r) => [r.type, r.payload.toString()]).slice(0, 3)).toEqual([
      [JournalRecordType.Start, expect.any(String)],
      [JournalRecordType.Intent, "one"],
      [JournalRecordType.Completion, "two"],
    ]);
    expect(records[3]?.offset).toBe(end);
    expect(records[3]?.type).toBe(JournalRecordType.Start);
    await j2.close();
  });

  it("truncates a record whose checksum does not match", async () => {
    const dir = tempDir();
    const j = await AuditJournal.open({ dir });
    await j.append(JournalRecordType.Completion, Buffer.from("keep"));
    const off = await j.append(JournalRecordType.Completion, Buffer.from("flip"));
    await j.close();
    const seg = join(dir, fs.readdirSync(dir).find((n) => n.endsWith(".wal")) as string);
    const data = fs.readFileSync(seg);
    data[off + 9] = 0x46; // 'f' → 'F'
    fs.writeFileSync(seg, data);
    const j2 = await AuditJournal.open({ dir });
    const payloads = (await readAll(j2)).map((r) => r.payload.toString());
    expect(payloads).toContain("keep");
    expect(payloads).not.toContain("flip");
    expect(payloads).not.toContain("Flip");
    await j2.close();
  });

  it("rotates segments, reads across them and deletes released ones", async () => {
    const dir = tempDir();
    const j = await AuditJournal.open({ dir, segmentBytes: 1000 });
    const offsets: number[] = [];
    for (let i = 0; i < 50; i++) {
      offsets.push(await j.append(JournalRecordType.Completion, Buffer.alloc(100, i)));
    }
    const segments = fs.readdirSync(dir).filter((n) => n.endsWith(".wal"));
    expect(segments.length).toBeGreaterThan(4);
    const records = await readAll(j);
    expect(records.filter((r) => r.type === JournalRecordType.Completion).map((r) => r.payload[0])).toEqual(
      Array.from({ length: 50 }, (_, i) => i),
    );
    await j.release(offsets[40] as number);
    const left = fs.readdirSync(dir).filter((n) => n.endsWith(".wal"));
    expect(left.length).toBeLessThan(segments.length);
    expect(j.startOffset).toBeLessThanOrEqual(offsets[40] as number);
    const fromRelease = await readAll(j, offsets[40] as number);
    expect(fromRelease.map((r) => r.payload[0])).toEqual(Array.from({ length: 10 }, (_, i) => 40 + i));
    await j.close();
    // Reopen continues after the last segment.
    const j2 = await AuditJournal.open({ dir, segmentBytes: 1000 });
    expect(j2.startOffset).toBe(j.startOffset);
    expect((await readAll(j2, offsets[49] as number)).map((r) => r.type)).toEqual([
      JournalRecordType.Completion,
      JournalRecordType.Start,
    ]);
    await j2.close();
  });

  it("commits a deferSync append with the next urgent append: one fsync for a lone caller's completion and next intent", async () => {
    const j = await AuditJournal.open({ dir: tempDir(), deferredSyncMs: 10_000 });
    const before = j.stats.fsyncs;
    let completionDurable = false;
    const completion = j
      .append(JournalRecordType.Final, Buffer.from("final-1"), { deferSync: true, completesIntent: true })
      .then((offset) => {
        completionDurable = true;
        return offset;
      });
    // No commit of its own: nothing is written or fsynced for it yet.
    await new Promise((r) => setTimeout(r, 50));
    expect(completionDurable).toBe(false);
    expect(j.stats.fsyncs).toBe(before);
    const endBefore = j.durableEnd;
    // The next intent's commit takes it along, in append order.
    const intent = await j.append(JournalRecordType.Intent, Buffer.from("intent-2"));
    expect(await completion).toBe(endBefore);
    expect(completionDurable).toBe(true);
    expect(intent).toBeGreaterThan(endBefore);
    expect(j.stats.fsyncs).toBe(before + 1);
    const records = await readAll(j, endBefore);
    expect(records.map((r) => r.payload.toString())).toEqual(["final-1", "intent-2"]);
    await j.close();
  });

  it("commits a deferSync append on its own after deferredSyncMs, and on close", async () => {
    const dir = tempDir();
    const j = await AuditJournal.open({ dir, deferredSyncMs: 30 });
    const before = j.stats.fsyncs;
    const started = performance.now();
    await j.append(JournalRecordType.Final, Buffer.from("alone"), { deferSync: true });
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
    expect(j.stats.fsyncs).toBe(before + 1);
    // deferredSyncMs 0: like any other append (committed in the next turn, not after a timer).
    const k = await AuditJournal.open({ dir: tempDir(), deferredSyncMs: 0 });
    const kBefore = k.stats.fsyncs;
    await k.append(JournalRecordType.Final, Buffer.from("now"), { deferSync: true });
    expect(k.stats.fsyncs).toBe(kBefore + 1);
    await k.close();
    // sync() commits what is deferred, now.
    const j3 = await AuditJournal.open({ dir: tempDir(), deferredSyncMs: 60_000 });
    const j3Before = j3.stats.fsyncs;
    const pending = j3.append(JournalRecordType.Final, Buffer.from("synced"), { deferSync: true });
    const t0 = performance.now();
    await j3.sync();
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(j3.stats.fsyncs).toBe(j3Before + 1);
    await expect(pending).resolves.toBeTypeOf("number");
    await j3.sync(); // nothing queued: returns at once
    await j3.close();
    // close() commits what is still deferred.
    const j2 = await AuditJournal.open({ dir: tempDir(), deferredSyncMs: 60_000 });
    const last = j2.append(JournalRecordType.Final, Buffer.from("at-close"), { deferSync: true });
    await j2.close();
    await expect(last).resolves.toBeTypeOf("number");
    const reopened = await AuditJournal.open({ dir: j2.dir });
    expect((await readAll(reopened)).map((r) => r.payload.toString())).toContain("at-close");
    await reopened.close();
    await j.close();
  });

  it("rejects appends with ERR_JOURNAL_FULL once the unshipped backlog reaches maxBytes", async () => {
    const j = await AuditJournal.open({ dir: tempDir(), maxBytes: 4096 });
    let err: unknown;
    let accepted = 0;
    try {
      for (let i = 0; i < 100; i++) {
        await j.append(JournalRecordType.Intent, Buffer.alloc(200));
        accepted++;
      }
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AuditJournalError);
    expect((err as AuditJournalError).code).toBe("ERR_JOURNAL_FULL");
    expect(accepted).toBeGreaterThan(10);
    expect(accepted).toBeLessThan(20);
    expect(j.nearlyFull(209)).toBe(true);
    // Shipping frees room.
    await j.release(j.durableEnd);
    await expect(j.append(JournalRecordType.Intent, Buffer.alloc(200))).resolves.toBeTypeOf("number");
    await j.close();
    await expect(j.append(JournalRecordType.Intent, Buffer.alloc(1))).rejects.toMatchObject({
      code: "ERR_JOURNAL_CLOSED",
    });
  });
});
