// The fast upstream (nginx serving canned S3/DynamoDB answers and a 1 GiB object) and the
// "nginx as a plain reverse proxy" variant, both in one unprivileged-style nginx instance.
import { spawn } from "node:child_process";
import { closeSync, ftruncateSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitForPort } from "./processes.mjs";

export const NGINX = process.env.BENCH_NGINX ?? "/usr/sbin/nginx";

/** Small S3 GetObject body (the object is an XML document, as in many agent workloads). */
export const SMALL_OBJECT =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Report><Id>bench-0001</Id><Status>OK</Status><Items>3</Items></Report>\n';

/** DynamoDB GetItem answer. */
export const GET_ITEM_RESPONSE = '{"Item":{"pk":{"S":"k-1"},"name":{"S":"bench"},"count":{"N":"42"}}}';

function nginxString(s) {
  return `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'").replaceAll("\n", "\\n")}'`;
}

/**
 * Writes the config and starts nginx in the foreground (daemon off) with its own prefix.
 * `originPort` serves the canned answers; `proxyPort` proxies to it (and to the PUT sink).
 */
export async function startNginx({ dir, originPort, proxyPort, sinkPort, largeBytes }) {
  for (const d of ["www/bench-bucket", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi", "logs"]) {
    mkdirSync(join(dir, d), { recursive: true });
  }
  // Sparse: the kernel serves zero pages, so the upstream never touches the disk.
  const fd = openSync(join(dir, "www/bench-bucket/large"), "w");
  ftruncateSync(fd, largeBytes);
  closeSync(fd);

  const asRoot = process.getuid?.() === 0;
  const conf = `
${asRoot ? "user root root;" : ""}
worker_processes auto;
error_log ${dir}/logs/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  client_max_body_size 0;

  # (a) the upstream
  server {
    listen 127.0.0.1:${originPort} backlog=4096;
    root ${dir}/www;
    etag on;
    location = / {
      # DynamoDB (awsJson 1.0): every operation is POST /; answer GetItem.
      default_type application/x-amz-json-1.0;
      add_header x-amzn-RequestId BENCHREQUESTID0000000000000000000000000000000000000000;
      return 200 ${nginxString(GET_ITEM_RESPONSE)};
    }
    location = /bench-bucket/small {
      default_type application/xml;
      add_header x-amz-request-id BENCH0000000001;
      return 200 ${nginxString(SMALL_OBJECT)};
    }
    location /bench-bucket/ {
      default_type application/octet-stream;
      add_header x-amz-request-id BENCH0000000002;
    }
  }

  upstream origin {
    server 127.0.0.1:${originPort};
    keepalive 128;
  }
  upstream sink {
    server 127.0.0.1:${sinkPort};
    keepalive 16;
  }

  # (b) nginx as a plain reverse proxy
  server {
    listen 127.0.0.1:${proxyPort} backlog=4096;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_request_buffering off;
    proxy_buffering off;
    location /bench-bucket/upload/ { proxy_pass http://sink; }
    location / { proxy_pass http://origin; }
  }
}
`;
  writeFileSync(join(dir, "nginx.conf"), conf);
  const child = spawn(NGINX, ["-p", dir, "-c", join(dir, "nginx.conf"), "-g", "daemon off;"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d.toString();
  });
  const exited = new Promise((r) => child.once("exit", r));
  await Promise.race([
    Promise.all([waitForPort(originPort), waitForPort(proxyPort)]),
    exited.then(() => {
      throw new Error(`nginx exited: ${stderr}`);
    }),
  ]);
  return { child, pid: child.pid, exited };
}
