// Summarises a V8 .cpuprofile (node --cpu-prof): self time by area (our files, each package,
// node internals, GC) and by function, plus inclusive time of our own functions.

function areaOf(url, repo) {
  if (url === "") return "(native / V8)";
  let u = url.startsWith("file://") ? decodeURIComponent(url.slice(7)) : url;
  const nm = u.lastIndexOf("/node_modules/");
  if (nm !== -1) {
    const rest = u.slice(nm + 14).split("/");
    return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (u.startsWith(repo)) {
    u = u.slice(repo.length + 1);
    const m = /^([^/]+)\/dist\/(.*)$/.exec(u);
    return m ? `${m[1]}/${m[2]}` : u;
  }
  if (u.startsWith("node:")) {
    const parts = u.slice(5).split("/");
    return `node:${parts[0] === "internal" ? parts.slice(0, Math.min(parts.length, 2)).join("/").replace(/\.js$/, "") : parts[0]}`;
  }
  return u;
}

/** Returns { totalMs, byArea, topFunctions, ourInclusive } (percentages of non-idle samples). */
export function summarizeCpuProfile(profile, { repo, top = 25 }) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  let total = 0;
  const areas = new Map();
  const fns = new Map();
  const inclusive = new Map();
  const label = (n) => {
    const f = n.callFrame;
    return {
      key: `${f.functionName}|${f.url}|${f.lineNumber}`,
      name: f.functionName || "(anonymous)",
      where: `${areaOf(f.url, repo)}:${f.lineNumber + 1}`,
    };
  };
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    const name = n.callFrame.functionName;
    if (name === "(idle)") continue;
    total += us;
    const area =
      name === "(garbage collector)"
        ? "(garbage collector)"
        : name === "(program)"
          ? "(program)"
          : areaOf(n.callFrame.url, repo);
    areas.set(area, (areas.get(area) ?? 0) + us);
    const l = label(n);
    const f = fns.get(l.key) ?? { name: l.name, where: l.where, us: 0 };
    f.us += us;
    fns.set(l.key, f);
    // Inclusive time of our own code (edge-agent, sdk) and of the signer: charge every distinct ancestor once.
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const cn = byId.get(cur);
      const url = cn.callFrame.url;
      const ours =
        url.includes(`${repo}/edge-agent/`) ||
        url.includes(`${repo}/sdk/`) ||
        url.includes("signature-v4") ||
        url.includes("@nats-io/jetstream");
      if (!ours) continue;
      const cl = label(cn);
      if (seen.has(cl.key)) continue;
      seen.add(cl.key);
      const e = inclusive.get(cl.key) ?? { name: cl.name, where: cl.where, us: 0 };
      e.us += us;
      inclusive.set(cl.key, e);
    }
  }
  const pct = (us) => Math.round((us / total) * 1000) / 10;
  const sorted = (m) => [...m.values()].sort((a, b) => b.us - a.us);
  return {
    totalMs: Math.round(total / 1000),
    byArea: [...areas.entries()].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, pct: pct(us) })),
    topFunctions: sorted(fns)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, pct: pct(f.us) })),
    ourInclusive: sorted(inclusive)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, pct: pct(f.us) })),
  };
}
