// (c) The floor for any Node.js proxy here: keep-alive pass-through, no auth, no audit.
// Usage: node bench/node-proxy.mjs <port> <originPort> <sinkPort>
// Paths under /bench-bucket/upload/ go to the PUT sink, everything else to nginx.
import { Agent, createServer, request } from "node:http";
import { pipeline } from "node:stream";

const [port, originPort, sinkPort] = process.argv.slice(2).map(Number);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"]);

const server = createServer({ keepAlive: true, requestTimeout: 0 }, (req, res) => {
  const headers = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    if (!HOP.has(name)) headers[name] = req.rawHeaders[i + 1];
  }
  const up = request(
    {
      host: "127.0.0.1",
      port: req.url.startsWith("/bench-bucket/upload/") ? sinkPort : originPort,
      method: req.method,
      path: req.url,
      headers,
      agent,
    },
    (upRes) => {
      const out = [];
      for (let i = 0; i < upRes.rawHeaders.length; i += 2) {
        if (!HOP.has(upRes.rawHeaders[i].toLowerCase())) out.push(upRes.rawHeaders[i], upRes.rawHeaders[i + 1]);
      }
      res.writeHead(upRes.statusCode, upRes.statusMessage, out);
      pipeline(upRes, res, () => {});
    },
  );
  up.on("error", () => {
    if (!res.headersSent) res.writeHead(502).end();
    else res.destroy();
  });
  pipeline(req, up, () => {});
});
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`ready ${server.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
