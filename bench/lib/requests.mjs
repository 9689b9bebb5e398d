// Pre-signed small requests for wrk: wrk's Lua has no HMAC, so Node signs N distinct requests
// (distinct amz-sdk-invocation-id, as SDK calls are) and wrk replays them in a cycle.
// Signatures stay valid for the clock-skew window (5 min for DynamoDB, 15 for S3).
import { writeFileSync } from "node:fs";
import { EMPTY_SHA256, rawHeaderLines, sdkHeaders, signRequest } from "./sigv4.mjs";

const USER_AGENT = "aws-sdk-js/3.0 ua/2.1 os/linux lang/js md/nodejs#20 api/bench";

/** The small-request workloads. */
export const WORKLOADS = {
  "s3-get-object": {
    describe: "S3 GetObject of a 117-byte XML object (rest-xml, path style)",
    async build({ credential, host, region }) {
      const path = "/bench-bucket/small";
      const { headers } = await signRequest({
        credential,
        service: "s3",
        region,
        method: "GET",
        host,
        path,
        headers: { "x-amz-content-sha256": EMPTY_SHA256, ...sdkHeaders(), "user-agent": USER_AGENT },
      });
      return `GET ${path} HTTP/1.1\r\n${rawHeaderLines(headers)}\r\n\r\n`;
    },
  },
  "dynamodb-get-item": {
    describe: "DynamoDB GetItem (awsJson 1.0, POST / with X-Amz-Target and a JSON body)",
    async build({ credential, host, region, i }) {
      const body = JSON.stringify({ TableName: "bench-table", Key: { pk: { S: `k-${i}` } } });
      const { headers } = await signRequest({
        credential,
        service: "dynamodb",
        region,
        method: "POST",
        host,
        path: "/",
        headers: {
          "content-type": "application/x-amz-json-1.0",
          "x-amz-target": "DynamoDB_20120810.GetItem",
          "content-length": String(Buffer.byteLength(body)),
          ...sdkHeaders(),
          "user-agent": USER_AGENT,
        },
        body,
      });
      return `POST / HTTP/1.1\r\n${rawHeaderLines(headers)}\r\n\r\n${body}`;
    },
  },
};

/** Signs `count` requests of a workload for `host` and writes them as a Lua table file. */
export async function writeRequestFile({ workload, credential, host, region, count, file }) {
  const w = WORKLOADS[workload];
  const reqs = [];
  for (let i = 0; i < count; i++) reqs.push(await w.build({ credential, host, region, i }));
  // JSON string escapes (\r \n \" \\) are valid Lua escapes for this ASCII content.
  writeFileSync(file, `return {\n${reqs.map((r) => JSON.stringify(r)).join(",\n")}\n}\n`);
  return reqs;
}
