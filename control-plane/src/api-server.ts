import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import * as net from "node:net";

/** A request handler usable by both `http` and `http2` (e.g. from `connectNodeAdapter`). */
export type DualHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/** Where an {@link ApiServer} listens. */
export interface ApiServerAddress {
  host: string;
  port: number;
  /** `http://HOST:PORT` with the bound port. */
  url: string;
}

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
/** Bytes needed to tell the HTTP/2 preface apart from any HTTP/1.x request line. */
const SNIFF_BYTES = 14; // "PRI * HTTP/2.0"

/**
 * Serves one handler over HTTP/1.1 and cleartext HTTP/2 (h2c with prior knowledge) on a single
 * port. Node's http2 module cannot share a cleartext port with HTTP/1.1, so a plain TCP server
 * peeks at the first bytes of each connection and hands it to the matching server. gRPC
 * clients speak h2c; Connect and gRPC-Web clients may use either.
 *
 * Built separately from {@link listen} so tests can start it on port 0; {@link close} destroys
 * every open connection.
 */
export class ApiServer {
  readonly #tcp: net.Server;
  readonly #h1: http.Server;
  readonly #h2: http2.Http2Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #sessions = new Set<http2.Http2Session>();
  #address: ApiServerAddress | undefined;

  constructor(handler: DualHandler) {
    this.#h1 = http.createServer(handler);
    this.#h2 = http2.createServer(handler);
    // A broken client session must not take the server down; the session is destroyed anyway.
    this.#h2.on("sessionError", () => {});
    this.#h2.on("session", (session) => {
      this.#sessions.add(session);
      session.once("close", () => this.#sessions.delete(session));
    });
    this.#tcp = net.createServer((socket) => this.#accept(socket));
  }

  #accept(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const n = Math.min(buffered.length, SNIFF_BYTES);
      const isH2Prefix = buffered.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (isH2Prefix && buffered.length < SNIFF_BYTES) return; // need more bytes to decide
      socket.off("data", onData);
      socket.pause();
      socket.unshift(buffered);
      if (isH2Prefix) {
        // The HTTP/2 session reads what is already buffered on the socket on its first tick,
        // then consumes the handle directly; resuming here would drop the buffered preface.
        this.#h2.emit("connection", socket);
      } else {
        this.#h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  }

  /** Starts listening; port 0 picks a free port. */
  async listen(port: number, host: string): Promise<ApiServerAddress> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#tcp.once("error", onError);
      this.#tcp.listen(port, host, () => {
        this.#tcp.off("error", onError);
        resolve();
      });
    });
    const addr = this.#tcp.address() as AddressInfo;
    const urlHost = addr.address.includes(":") ? `[${addr.address}]` : addr.address;
    this.#address = { host: addr.address, port: addr.port, url: `http://${urlHost}:${addr.port}` };
    return this.#address;
  }

  /** The bound address, once listening. */
  get address(): ApiServerAddress | undefined {
    return this.#address;
  }

  /** Stops accepting, then destroys every open connection. */
  async close(): Promise<void> {
    const closed = this.#tcp.listening
      ? new Promise<void>((resolve) => this.#tcp.close(() => resolve()))
      : Promise.resolve();
    for (const session of this.#sessions) session.destroy();
    for (const socket of this.#sockets) socket.destroy();
    this.#h1.closeAllConnections();
    await closed;
  }
}
