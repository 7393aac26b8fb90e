// aerofn's host API for JavaScript and TypeScript functions (docs/JS.md).
// Everything here is a global of aerofn's JavaScript runtime; a function
// exports `handler` (or a default function, or exactly one function):
//
//   export async function handler(event: AerofnEvent) { return { statusCode: 200, body: "hi" }; }

/** The event a call is about (docs/ABI.md, "The event and the result").
 * When the event has a payload (an HTTP or webhook JSON object body, a
 * database event's new row, or old row for a DELETE) the handler gets the
 * payload, with the event as its prototype: `arg.name` is the body's name,
 * `arg.trigger` and `arg.headers` are the event's unless the payload has
 * fields with those names, and `arg.body` / `arg.new` are always there
 * (unless shadowed) to read the payload exactly. */
interface AerofnEvent {
  trigger: "http" | "database" | "schedule" | "webhook";
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  headers_all?: Record<string, string[]>;
  query?: Record<string, string>;
  query_all?: Record<string, string[]>;
  body?: unknown;
  body_encoding?: "base64";
  request_id?: string;
  user_id?: string;
  role?: string;
  schema?: string;
  table?: string;
  operation?: "INSERT" | "UPDATE" | "DELETE";
  old?: Record<string, unknown> | null;
  new?: Record<string, unknown> | null;
  event_id?: string;
  attempt?: number;
  timestamp?: string;
  cron?: string;
  scheduled_time?: string;
  actual_time?: string;
  delivery_id?: string;
  [field: string]: unknown;
}

/** An HTTP result; any other JSON value is sent as a 200 JSON body. */
interface AerofnResponse {
  statusCode: number;
  headers?: Record<string, string | string[]>;
  /** A string is sent as it is (base64-decoded with isBase64Encoded); anything else as JSON. */
  body?: unknown;
  isBase64Encoded?: boolean;
}

interface QueryResult<Row = Record<string, any>> {
  rows: Row[];
  rowCount: number;
  command: string;
}

/** A refused or failed query: code is the SQLSTATE, or an aerofn code
 * (statement_rejected, too_many_rows, result_too_large, timeout...). */
declare class DBError extends Error {
  name: "DBError";
  code: string;
}

/** Runs one SQL statement ($1, $2... bound to params) under the row-level
 * security of the principal the call acts for. Rejects with a DBError. */
declare function db_query<Row = Record<string, any>>(sql: string, params?: unknown[]): Promise<QueryResult<Row>>;
declare const db: { query: typeof db_query };

interface FetchOptions {
  method?: string;
  headers?: Record<string, string>;
  /** A string, bytes, or any other value (sent as JSON with content-type application/json). */
  body?: unknown;
}

interface FetchResponse {
  status: number;
  ok: boolean;
  /** A header received several times is a list of its values. */
  headers: Record<string, string | string[]>;
  body: string;
  text(): Promise<string>;
  json<T = any>(): Promise<T>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** The host did not make the request (off the allow-list, timeout...). */
declare class FetchError extends Error {
  name: "FetchError";
  code: string;
}

/** Fetches a URL on the function's allow-list (allowed_hosts). Any status
 * is a response; rejects with a FetchError when no response came. */
declare function http_fetch(url: string, opts?: FetchOptions): Promise<FetchResponse>;
declare const http: {
  fetch: typeof http_fetch;
  get(url: string, opts?: FetchOptions): Promise<FetchResponse>;
  post(url: string, body?: unknown, opts?: FetchOptions): Promise<FetchResponse>;
  put(url: string, body?: unknown, opts?: FetchOptions): Promise<FetchResponse>;
  patch(url: string, body?: unknown, opts?: FetchOptions): Promise<FetchResponse>;
  delete(url: string, opts?: FetchOptions): Promise<FetchResponse>;
};

/** A variable or secret from the function's env whitelist, or undefined. */
declare function env(key: string): string | undefined;

/** One info line in the call's record; log.debug/info/warn/error set the level. */
declare const log: ((...args: unknown[]) => void) & {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
};

declare const console: {
  log(...args: unknown[]): void;
  info(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  trace(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
};
