import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServiceAccountStore } from "./service-account-store.js";

// The machine's Redis, isolated by a unique prefix.
const prefix = `tgtest:${randomBytes(4).toString("hex")}:`;
let redis: Redis;

beforeAll(async () => {
  redis = new Redis("redis://127.0.0.1:6379", { lazyConnect: true });
  await redis.connect();
});

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

describe("ServiceAccountStore", () => {
  it("stores only a hash, authenticates the key, rotates and deletes it", async () => {
    const store = new ServiceAccountStore(redis, prefix);
    const created = await store.create({ name: "bot", connection: "c", principal: "sa:bot", credentialTtlSec: 600 });
    if (!created.ok) throw new Error("not created");
    const { apiKey } = created;
    expect(apiKey).toMatch(/^tgsk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(await store.create({ name: "bot", connection: "c", principal: "x", credentialTtlSec: 600 })).toEqual({
      ok: false,
      reason: "exists",
    });
    // Nothing in Redis holds the key itself.
    for (const k of await redis.keys(`${prefix}*`)) {
      const all = await redis.hgetall(k);
      expect(JSON.stringify(all)).not.toContain(apiKey.slice(22));
    }
    expect((await store.authenticate(apiKey)).ok).toBe(true);
    // Same key id, another secret.
    const wrong = `${apiKey.slice(0, 22)}${"A".repeat(43)}`;
    expect(await store.authenticate(wrong)).toMatchObject({ ok: false, reason: "mismatch" });
    expect(await store.authenticate("tgsk_nothing")).toMatchObject({ ok: false, reason: "malformed" });

    const rotated = await store.rotateKey("bot");
    expect(rotated?.account.keyId).not.toBe(created.account.keyId);
    expect(await store.authenticate(apiKey)).toMatchObject({ ok: false, reason: "unknown" });
    expect((await store.authenticate(rotated?.apiKey ?? "")).ok).toBe(true);
    expect(await store.rotateKey("nobody")).toBeUndefined();

    expect(await store.delete("bot")).toBe(true);
    expect(await store.authenticate(rotated?.apiKey ?? "")).toMatchObject({ ok: false, reason: "unknown" });
    expect(await store.delete("bot")).toBe(false);
    expect(await redis.hlen(`${prefix}service-account-keys`)).toBe(0);
  });
});
