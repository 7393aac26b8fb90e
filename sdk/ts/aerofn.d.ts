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

/** An HTTP result (or return a Response); any other JSON value is sent as a 200 JSON body. */
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
 * security of the principal the call acts for. Rejects with a DBError.
 * The result's prototype is its first row, so a one-row query reads as the
 * row (`(await db.query("SELECT * FROM users WHERE id = $1", [id])).email`);
 * rows, rowCount and command win over columns of those names. */
declare function db_query<Row = Record<string, any>>(sql: string, params?: unknown[]): Promise<QueryResult<Row> & Partial<Row>>;
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

/** The host did not make the request (off the allow-list, timeout...).
 * A TypeError, as the standard fetch's network errors are. */
declare class FetchError extends TypeError {
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

/** Sends an email through an HTTP email API in Resend's shape: POST
 * {from, to, subject, text} to env EMAIL_API_URL with "Authorization:
 * Bearer" env EMAIL_API_KEY (from: env EMAIL_FROM). List the three in the
 * function's config.env and the API's host in allowed_hosts. The third
 * argument is the text (default: the subject) or fields merged into the
 * request (html, cc, reply_to...). Resolves to the API's JSON answer;
 * rejects when the API answers other than 2xx. */
declare const email: {
  send(to: string | string[], subject: string, textOrFields?: string | Record<string, unknown>): Promise<any>;
};

type HeadersInit = Headers | Record<string, string | string[]> | Iterable<[string, string]>;

/** The fetch standard's Headers: case-insensitive names; a repeated
 * header's values joined with ", ". */
declare class Headers implements Iterable<[string, string]> {
  constructor(init?: HeadersInit);
  append(name: string, value: string): void;
  set(name: string, value: string): void;
  get(name: string): string | null;
  getSetCookie(): string[];
  has(name: string): boolean;
  delete(name: string): void;
  forEach(fn: (value: string, name: string, headers: Headers) => void, thisArg?: unknown): void;
  entries(): IterableIterator<[string, string]>;
  keys(): IterableIterator<string>;
  values(): IterableIterator<string>;
  [Symbol.iterator](): IterableIterator<[string, string]>;
}

/** What fetch() resolves to: the whole body, buffered by the host (within
 * http_fetch's limits), readable once. A handler may also return one: its
 * status, headers and body are the HTTP answer. */
declare class Response {
  constructor(body?: string | ArrayBuffer | ArrayBufferView | null, init?: { status?: number; statusText?: string; headers?: HeadersInit });
  /** A JSON response (content-type application/json unless init sets one). */
  static json(data: unknown, init?: { status?: number; statusText?: string; headers?: HeadersInit }): Response;
  readonly status: number;
  readonly statusText: string;
  readonly ok: boolean;
  readonly headers: Headers;
  readonly url: string;
  readonly redirected: boolean;
  readonly bodyUsed: boolean;
  text(): Promise<string>;
  json<T = any>(): Promise<T>;
  arrayBuffer(): Promise<ArrayBuffer>;
  bytes(): Promise<Uint8Array>;
  clone(): Response;
}

interface RequestInit {
  method?: string;
  headers?: HeadersInit;
  /** A string, bytes or URLSearchParams (form-encoded), as in the standard. */
  body?: string | ArrayBuffer | ArrayBufferView | URLSearchParams | null;
}

/** The standard fetch over http_fetch: the function's allowed_hosts, limits
 * and timeout apply. Any status is a Response; rejects with a FetchError (a
 * TypeError) when no response came. No streams, no AbortSignal. */
declare function fetch(input: string | URL | { url: string; method?: string; headers?: HeadersInit; body?: RequestInit["body"] }, init?: RequestInit): Promise<Response>;

/** Timers run within the call until the handler's promise settles (timers
 * still pending then are dropped); the call's timeout bounds every wait. */
declare function setTimeout<A extends unknown[]>(fn: (...args: A) => void, ms?: number, ...args: A): number;
declare function setInterval<A extends unknown[]>(fn: (...args: A) => void, ms?: number, ...args: A): number;
declare function clearTimeout(id?: number): void;
declare function clearInterval(id?: number): void;
declare function queueMicrotask(fn: () => void): void;

/** WHATWG URL (parsed by the host's URL parser). */
declare class URL {
  constructor(url: string, base?: string | URL);
  readonly origin: string;
  readonly protocol: string;
  readonly username: string;
  readonly password: string;
  readonly host: string;
  readonly hostname: string;
  readonly port: string;
  readonly pathname: string;
  search: string;
  hash: string;
  readonly href: string;
  readonly searchParams: URLSearchParams;
  toString(): string;
  toJSON(): string;
}

declare class URLSearchParams implements Iterable<[string, string]> {
  constructor(init?: string | URLSearchParams | Record<string, string> | Iterable<[string, string]>);
  readonly size: number;
  append(name: string, value: string): void;
  delete(name: string): void;
  get(name: string): string | null;
  getAll(name: string): string[];
  has(name: string): boolean;
  set(name: string, value: string): void;
  sort(): void;
  forEach(fn: (value: string, name: string, params: URLSearchParams) => void, thisArg?: unknown): void;
  entries(): IterableIterator<[string, string]>;
  keys(): IterableIterator<string>;
  values(): IterableIterator<string>;
  [Symbol.iterator](): IterableIterator<[string, string]>;
  toString(): string;
}
