/**
 * JSON-RPC codes from tRPC's error table (public in `@trpc/server/rpc`); kept here
 * so the protocol needs no runtime import from tRPC.
 */
export const RPC_CODES = {
  PARSE_ERROR: -32700,
  BAD_REQUEST: -32600,
  INTERNAL_SERVER_ERROR: -32603,
  NOT_IMPLEMENTED: -32603,
  BAD_GATEWAY: -32603,
  SERVICE_UNAVAILABLE: -32603,
  GATEWAY_TIMEOUT: -32603,
  UNAUTHORIZED: -32001,
  PAYMENT_REQUIRED: -32002,
  FORBIDDEN: -32003,
  NOT_FOUND: -32004,
  METHOD_NOT_SUPPORTED: -32005,
  TIMEOUT: -32008,
  CONFLICT: -32009,
  PRECONDITION_FAILED: -32012,
  PAYLOAD_TOO_LARGE: -32013,
  UNSUPPORTED_MEDIA_TYPE: -32015,
  UNPROCESSABLE_CONTENT: -32022,
  TOO_MANY_REQUESTS: -32029,
  CLIENT_CLOSED_REQUEST: -32099,
} as const;

/**
 * tRPC retries exactly the codes that share -32603 (5xx); everything else ends
 * the subscription. The long-poll transport keeps that rule.
 */
export function isRetryableRpcCode(code: unknown): boolean {
  return code === RPC_CODES.INTERNAL_SERVER_ERROR;
}

/**
 * A subscription refused for lack of capacity (`TOO_MANY_REQUESTS`, or a
 * `-32603` code such as `SERVICE_UNAVAILABLE`) with a `retryAfterMs` hint is
 * pressure, not a verdict: the client tries it again later, like a 429 poll.
 */
export function isRetryableEnd(code: unknown, retryAfterMs: number | undefined): boolean {
  return isRetryableRpcCode(code) || (retryAfterMs !== undefined && code === RPC_CODES.TOO_MANY_REQUESTS);
}

/** HTTP statuses that mean "try again later" whatever the body says. */
export function isRetryableHttpStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}
