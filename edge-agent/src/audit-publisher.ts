import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { AuditEvent } from "@tollgate/proto";
import { auditEventToJson, auditSubject } from "@tollgate/sdk";
import type { Logger } from "./logger.js";

/** Options for {@link AuditPublisher}. */
export interface AuditPublisherOptions {
  nc: NatsConnection;
  js: JetStreamClient;
  logger: Logger;
  /** Attempts per event before giving up. Default 5. */
  maxAttempts?: number;
  /** First retry delay, doubled each attempt. Default 100 ms. */
  retryDelayMs?: number;
}

/**
 * Publishes audit events to JetStream, waiting for the stream's acknowledgement. The event id
 * is the `Nats-Msg-Id`, so a retried publish is stored once (duplicate window).
 */
export class AuditPublisher {
  readonly #o: Required<AuditPublisherOptions>;
  #failures = 0;
  #connected = true;

  constructor(options: AuditPublisherOptions) {
    this.#o = { maxAttempts: 5, retryDelayMs: 100, ...options };
    void this.#watch();
  }

  async #watch(): Promise<void> {
    for await (const s of this.#o.nc.status()) {
      if (s.type === "disconnect") this.#connected = false;
      else if (s.type === "reconnect") this.#connected = true;
    }
  }

  /** False when the NATS connection is down: the edge then refuses calls (fail closed). */
  get healthy(): boolean {
    return this.#connected && !this.#o.nc.isClosed();
  }

  /** Events that could not be published after all attempts. */
  get failures(): number {
    return this.#failures;
  }

  /** Publishes one event; resolves true once JetStream acknowledged it. Never throws. */
  async publish(subjectPrefix: string, event: AuditEvent): Promise<boolean> {
    const subject = auditSubject(subjectPrefix, {
      connection: event.tollgate?.connection ?? "",
      principal: event.userIdentity?.principalId ?? "",
      service: event.tollgate?.signingName ?? "",
      operation: event.eventName,
    });
    const payload = auditEventToJson(event);
    let delay = this.#o.retryDelayMs;
    for (let attempt = 1; attempt <= this.#o.maxAttempts; attempt++) {
      try {
        await this.#o.js.publish(subject, payload, { msgID: event.eventId });
        return true;
      } catch (err) {
        this.#o.logger.warn({ err: String(err), eventID: event.eventId, attempt }, "audit publish failed");
        if (attempt < this.#o.maxAttempts) {
          await new Promise((r) => setTimeout(r, delay));
          delay *= 2;
        }
      }
    }
    this.#failures++;
    this.#o.logger.error({ eventID: event.eventId }, "audit event could not be published");
    return false;
  }
}
