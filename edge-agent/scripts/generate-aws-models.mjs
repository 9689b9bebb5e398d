// Generates edge-agent/src/gen/aws-models/, the compact routing data the classifier needs, from
// AWS's own API models as shipped in the pinned aws-sdk v2 package (node_modules/aws-sdk/apis).
//
// index.json, per service (newest API version only): model key, serviceId, protocol(s), signing
// name, endpoint prefix, JSON target prefix/version, API version, global endpoint. That is all
// routing to a service needs, so it is all an edge process loads at start.
//
// <model key>.json, per operation of that service: the HTTP trait of rest protocols, the
// uri/querystring member names, required querystring/header members (to tell e.g. CopyObject
// from PutObject), the payload member, the endpoint host prefix and the request/response member
// paths AWS marks `sensitive`. Loaded the first time a request needs that service's operations.
//
// A few facts newer than the pinned models are added in OVERLAYS below (documented one by one).
// Run: npm run generate:aws-models -w @tollgate/edge-agent
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const sdkRoot = path.dirname(require.resolve("aws-sdk/package.json"));
const apis = path.join(sdkRoot, "apis");
const sdkVersion = JSON.parse(readFileSync(path.join(sdkRoot, "package.json"), "utf8")).version;
const out = path.join(here, "..", "src", "gen", "aws-models");

/** Maximum shape depth walked for sensitive members (AWS shapes are rarely deeper). */
const MAX_DEPTH = 12;

/**
 * Facts the pinned (2021) models predate. Each entry is merged into the generated service.
 * - SQS: current SDKs speak awsJson 1.0 (`X-Amz-Target: AmazonSQS.<Op>`); older ones awsQuery.
 * - CloudWatch: current SDK v3 clients speak awsJson 1.0 with target prefix
 *   `GraniteServiceVersion20100801` (see @aws-sdk/client-cloudwatch 3.1164.0, dist-cjs); some
 *   releases sent Smithy RPC v2 CBOR to `/service/GraniteServiceVersion20100801/operation/<Op>`;
 *   older clients and the CLI send awsQuery.
 * - S3: CreateSession (S3 Express), GetObjectAttributes and the metadata table configuration
 *   operations.
 */
const OVERLAYS = {
  sqs: { protocols: ["query", "json"], targetPrefix: "AmazonSQS", jsonVersion: "1.0" },
  cloudwatch: {
    protocols: ["query", "json", "smithy-rpc-v2-cbor"],
    targetPrefix: "GraniteServiceVersion20100801",
    jsonVersion: "1.0",
  },
  s3: {
    operations: {
      CreateSession: { h: "GET /{Bucket}?session" },
      GetObjectAttributes: { h: "GET /{Bucket}/{Key+}?attributes" },
      CreateBucketMetadataTableConfiguration: { h: "POST /{Bucket}?metadataTable" },
      GetBucketMetadataTableConfiguration: { h: "GET /{Bucket}?metadataTable" },
      DeleteBucketMetadataTableConfiguration: { h: "DELETE /{Bucket}?metadataTable" },
    },
  },
};

/**
 * Services with one global endpoint, signed in their partition's home region, besides those whose
 * model names a `globalEndpoint` (aws-sdk's lib/region_config_data.json "globalSSL" services).
 * S3 and STS models name a global endpoint too but are regional today: left out.
 */
const EXTRA_GLOBAL = { budgets: "budgets.amazonaws.com", waf: "waf.amazonaws.com" };
const NOT_GLOBAL = new Set(["s3", "sts"]);

const metadata = JSON.parse(readFileSync(path.join(apis, "metadata.json"), "utf8"));
const files = readdirSync(apis).filter((f) => f.endsWith(".min.json"));

function newestModelFile(prefix) {
  const re = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-(\\d{4}-\\d{2}-\\d{2})\\.min\\.json$`);
  const matches = files.filter((f) => re.test(f)).sort();
  return matches.at(-1);
}

function resolveShape(model, ref) {
  if (ref === undefined) return undefined;
  if (ref.shape !== undefined) {
    const target = model.shapes[ref.shape];
    // A member referencing a shape may itself carry traits (location, sensitive...).
    return { ...target, ...ref, shape: undefined, sensitive: ref.sensitive === true || target?.sensitive === true };
  }
  return ref;
}

/** Wire name of a member in a body (JSON key, XML element or query key). */
function wireName(name, member) {
  return member.location === undefined && typeof member.locationName === "string" ? member.locationName : name;
}

function sensitivePaths(model, rootRef) {
  const paths = [];
  const walk = (ref, prefix, depth, stack) => {
    const shape = resolveShape(model, ref);
    if (shape === undefined || depth > MAX_DEPTH) return;
    if (ref.shape !== undefined) {
      if (stack.includes(ref.shape)) return;
      stack = [...stack, ref.shape];
    }
    if (shape.sensitive === true && prefix.length > 0) {
      paths.push(prefix.join("."));
      return;
    }
    const type = shape.type ?? "structure";
    if (type === "structure" && shape.members !== undefined) {
      for (const [name, member] of Object.entries(shape.members)) {
        const segment = prefix.length === 0 && member.location !== undefined ? name : wireName(name, member);
        walk(member, [...prefix, segment], depth + 1, stack);
      }
    } else if (type === "list" && shape.member !== undefined) {
      walk(shape.member, prefix, depth + 1, stack);
    } else if (type === "map" && shape.value !== undefined) {
      walk(shape.value, [...prefix, "*"], depth + 1, stack);
    }
  };
  if (rootRef !== undefined) walk(rootRef, [], 0, []);
  return [...new Set(paths)].sort();
}

function isRest(protocol) {
  return protocol === "rest-json" || protocol === "rest-xml";
}

function operationEntry(model, protocol, op) {
  const entry = {};
  const input = resolveShape(model, op.input);
  if (isRest(protocol)) {
    // Never route on the SDKs' informational `x-id=` query literal (a client could fake it).
    const uri = (op.http?.requestUri ?? "/").replace(/([?&])x-id=[^&]*&?/, "$1").replace(/[?&]$/, "");
    entry.h = `${op.http?.method ?? "POST"} ${uri}`;
    const required = new Set(input?.required ?? []);
    const labels = {};
    const query = {};
    const requiredQuery = [];
    const requiredHeaders = [];
    for (const [name, ref] of Object.entries(input?.members ?? {})) {
      const member = resolveShape(model, ref);
      const wire = member.locationName ?? name;
      if (member.location === "uri" && wire !== name) labels[wire] = name;
      if (member.location === "querystring") {
        query[wire] = name;
        if (required.has(name)) requiredQuery.push(wire);
      }
      if (member.location === "header" && required.has(name)) requiredHeaders.push(wire.toLowerCase());
    }
    if (Object.keys(labels).length > 0) entry.l = labels;
    if (Object.keys(query).length > 0) entry.q = query;
    if (requiredQuery.length > 0) entry.rq = requiredQuery.sort();
    if (requiredHeaders.length > 0) entry.rh = requiredHeaders.sort();
    if (input?.payload !== undefined) {
      const payload = resolveShape(model, input.members?.[input.payload]);
      entry.pl = input.payload;
      if (payload?.type !== undefined && payload.type !== "structure") entry.pb = 1;
    }
  }
  if (op.endpoint?.hostPrefix !== undefined) entry.hp = op.endpoint.hostPrefix;
  // Deprecated operations (GetBucketLifecycle) share bindings with their successors and lose ties.
  if (op.deprecated === true) entry.d = 1;
  const si = sensitivePaths(model, op.input);
  const so = sensitivePaths(model, op.output);
  if (si.length > 0) entry.si = si;
  if (so.length > 0) entry.so = so;
  return entry;
}

const services = [];
for (const [key, info] of Object.entries(metadata)) {
  const file = newestModelFile(info.prefix ?? key);
  if (file === undefined) continue;
  const model = JSON.parse(readFileSync(path.join(apis, file), "utf8"));
  const m = model.metadata;
  const overlay = OVERLAYS[key] ?? {};
  const service = {
    k: key,
    id: m.serviceId ?? info.name,
    p: m.protocol,
    sn: m.signingName ?? m.endpointPrefix,
    ep: m.endpointPrefix,
    v: m.apiVersion,
  };
  const protocols = overlay.protocols ?? m.protocols;
  if (protocols !== undefined) service.ps = protocols;
  const targetPrefix = overlay.targetPrefix ?? m.targetPrefix;
  if (targetPrefix !== undefined) service.tp = targetPrefix;
  const jsonVersion = overlay.jsonVersion ?? m.jsonVersion;
  if (jsonVersion !== undefined) service.jv = jsonVersion;
  const globalEndpoint = EXTRA_GLOBAL[key] ?? (NOT_GLOBAL.has(key) ? undefined : m.globalEndpoint);
  if (globalEndpoint !== undefined) service.g = globalEndpoint;
  const operations = {};
  for (const name of Object.keys(model.operations).sort()) {
    operations[name] = operationEntry(model, m.protocol, model.operations[name]);
  }
  for (const [name, entry] of Object.entries(overlay.operations ?? {})) operations[name] = entry;
  service.o = operations;
  services.push(service);
}

services.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
// Written from scratch, so a service the models no longer have leaves no file behind.
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
// One service per line in the index, one operation per line in a service's file: compact, yet
// reviewable as a diff.
const index = services.map(({ o, ...routing }) => JSON.stringify(routing)).join(",\n");
writeFileSync(path.join(out, "index.json"), `{"source":"aws-sdk@${sdkVersion}","services":[\n${index}\n]}\n`);
for (const service of services) {
  const operations = Object.entries(service.o).map(([name, op]) => `${JSON.stringify(name)}:${JSON.stringify(op)}`);
  writeFileSync(
    path.join(out, `${service.k}.json`),
    `{"k":${JSON.stringify(service.k)},"o":{\n${operations.join(",\n")}\n}}\n`,
  );
}
process.stdout.write(`wrote ${path.relative(process.cwd(), out)}/: index.json and ${services.length} services\n`);
