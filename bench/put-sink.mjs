// PUT upstream: reads every byte of the request body, then answers like S3 PutObject.
// (nginx answers `return 200` before it has read the body and discards the rest afterwards,
// so a proxy in front of it would be measured forwarding into a discard, not an upload.)
// Usage: node bench/put-sink.mjs <port>
import { createServer } from "node:http";

const port = Number(process.argv[2] ?? 0);
let n = 0;
const server = createServer({ keepAlive: true, requestTimeout: 0 }, (req, res) => {
  let bytes = 0;
  req.on("data", (chunk) => {
    bytes += chunk.length;
  });
  req.on("end", () => {
    n++;
    res.writeHead(200, {
      "x-amz-request-id": `SINK${String(n).padStart(12, "0")}`,
      etag: '"00000000000000000000000000000000"',
      "x-bench-received-bytes": String(bytes),
      "content-length": "0",
    });
    res.end();
  });
});
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`ready ${server.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
