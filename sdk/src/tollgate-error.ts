/** Stable error codes raised by Tollgate libraries. */
export type TollgateErrorCode =
  | "ERR_CREDENTIAL_MALFORMED"
  | "ERR_CREDENTIAL_UNKNOWN_KEY"
  | "ERR_CREDENTIAL_INVALID"
  | "ERR_CREDENTIAL_EXPIRED"
  | "ERR_CONFIG"
  | "ERR_UNREACHABLE";

/** Error with a stable string `code`; the underlying error, if any, is in `cause`. */
export class TollgateError extends Error {
  override readonly name = "TollgateError";
  readonly code: TollgateErrorCode;

  constructor(code: TollgateErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
