// aerofn's JavaScript host API (sdk/ts/aerofn.d.ts describes it). It runs
// once, when the runtime initialises; __host holds the C primitives
// (runtime.c; parseURL is runner.js's) and is removed from the global scope
// afterwards.
(function (global, host) {
  "use strict";

  function define(name, value) {
    Object.defineProperty(global, name, { value: value, writable: true, configurable: true, enumerable: false });
  }

  // Logging: log lines go to the call's record (same caps as every module).
  function show(v) {
    if (typeof v === "string") return v;
    if (v instanceof Error) return v.stack || String(v);
    if (v === undefined || typeof v === "function" || typeof v === "symbol") return String(v);
    try {
      var s = JSON.stringify(v, function (k, x) { return typeof x === "bigint" ? x.toString() : x; });
      return s === undefined ? String(v) : s;
    } catch (e) {
      return String(v);
    }
  }
  function line(args) {
    var parts = [];
    for (var i = 0; i < args.length; i++) parts.push(show(args[i]));
    return parts.join(" ");
  }
  var DEBUG = 0, INFO = 1, WARN = 2, ERROR = 3;
  function log() { host.log(INFO, line(arguments)); }
  log.debug = function () { host.log(DEBUG, line(arguments)); };
  log.info = function () { host.log(INFO, line(arguments)); };
  log.warn = function () { host.log(WARN, line(arguments)); };
  log.error = function () { host.log(ERROR, line(arguments)); };
  define("log", log);
  define("console", {
    log: log.info, info: log.info, debug: log.debug, trace: log.debug,
    warn: log.warn, error: log.error,
  });

  define("env", function env(key) { return host.env(String(key)); });

  // db_query: the reply of the db_query import, or a DBError.
  class DBError extends Error {
    constructor(e) {
      super(e.message);
      this.name = "DBError";
      this.code = e.code;
    }
  }
  define("DBError", DBError);
  async function db_query(sql, params) {
    if (typeof sql !== "string") throw new TypeError("db_query: sql must be a string");
    if (params === undefined || params === null) params = [];
    if (!Array.isArray(params)) throw new TypeError("db_query: params must be an array");
    var reply = JSON.parse(host.db_query(JSON.stringify({ sql: sql, params: params })));
    if (reply.error) throw new DBError(reply.error);
    if (!reply.rows) reply.rows = [];
    // The first row is the result's prototype, so a query for one row can
    // be read as the row (the seed's `const user = await db.query(...)`;
    // `user.email`): rows, rowCount and command win over columns of those
    // names, and JSON.stringify(result) is {rows, rowCount, command}.
    var first = reply.rows[0];
    if (first && typeof first === "object" && !Array.isArray(first)) Object.setPrototypeOf(reply, first);
    return reply;
  }
  define("db_query", db_query);
  define("db", { query: db_query });

  // http_fetch: a FetchResponse, or a FetchError when the host did not make
  // the request (off the allow-list, timeout, refused connection).
  // A FetchError is a TypeError, as the standard fetch's network errors are.
  class FetchError extends TypeError {
    constructor(e) {
      super(e.message);
      this.name = "FetchError";
      this.code = e.code;
    }
  }
  define("FetchError", FetchError);
  function toBytes(v) {
    if (v instanceof ArrayBuffer) return new Uint8Array(v);
    if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    return null;
  }
  class FetchResponse {
    constructor(r) {
      this.status = r.status;
      this.ok = r.status >= 200 && r.status < 300;
      this.headers = r.headers || {};
      if (r.body_encoding === "base64") {
        this._bytes = new Uint8Array(host.b64decode(r.body || ""));
        this.body = host.utf8decode(this._bytes, false);
      } else {
        this.body = r.body || "";
      }
    }
    text() { return Promise.resolve(this.body); }
    json() { var b = this.body; return new Promise(function (ok) { ok(JSON.parse(b)); }); }
    arrayBuffer() {
      var b = this._bytes || new Uint8Array(host.utf8encode(this.body));
      return Promise.resolve(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    }
  }
  async function http_fetch(url, opts) {
    opts = opts || {};
    var req = { url: String(url), method: (opts.method || "GET").toUpperCase() };
    var headers = {};
    if (opts.headers) {
      for (var k in opts.headers) {
        if (Object.prototype.hasOwnProperty.call(opts.headers, k)) headers[k.toLowerCase()] = String(opts.headers[k]);
      }
    }
    var body = opts.body;
    if (body !== undefined && body !== null) {
      var bytes = toBytes(body);
      if (bytes) {
        req.body = host.b64encode(bytes);
        req.body_encoding = "base64";
      } else if (typeof body === "string") {
        req.body = body;
      } else {
        req.body = JSON.stringify(body);
        if (!headers["content-type"]) headers["content-type"] = "application/json";
      }
    }
    req.headers = headers;
    var reply = JSON.parse(host.http_fetch(JSON.stringify(req)));
    if (reply.error) throw new FetchError(reply.error);
    return new FetchResponse(reply);
  }
  define("http_fetch", http_fetch);

  // Headers, as in the fetch standard: names are case-insensitive, a
  // repeated header's values are joined with ", " (getSetCookie() keeps
  // Set-Cookie's apart), iteration is by lower-cased name in order.
  class Headers {
    constructor(init) {
      this._map = new Map();
      if (init === undefined || init === null) return;
      var self = this;
      if (init instanceof Headers) {
        init._map.forEach(function (vs, k) { self._map.set(k, vs.slice()); });
      } else if (typeof init[Symbol.iterator] === "function") {
        for (var p of init) {
          if (!p || p.length !== 2) throw new TypeError("Headers: each pair must be [name, value]");
          this.append(p[0], p[1]);
        }
      } else if (typeof init === "object") {
        for (var k of Object.keys(init)) {
          var v = init[k];
          if (Array.isArray(v)) v.forEach(function (x) { self.append(k, x); });
          else this.append(k, v);
        }
      } else {
        throw new TypeError("Headers: expected an object, an iterable of pairs or a Headers");
      }
    }
    append(k, v) {
      k = String(k).toLowerCase();
      var l = this._map.get(k);
      if (l) l.push(String(v)); else this._map.set(k, [String(v)]);
    }
    set(k, v) { this._map.set(String(k).toLowerCase(), [String(v)]); }
    get(k) { var l = this._map.get(String(k).toLowerCase()); return l ? l.join(", ") : null; }
    getSetCookie() { return (this._map.get("set-cookie") || []).slice(); }
    has(k) { return this._map.has(String(k).toLowerCase()); }
    delete(k) { this._map.delete(String(k).toLowerCase()); }
    _pairs() {
      var self = this;
      return Array.from(this._map.keys()).sort().map(function (k) { return [k, self.get(k)]; });
    }
    forEach(f, thisArg) { for (var p of this._pairs()) f.call(thisArg, p[1], p[0], this); }
    entries() { return this._pairs()[Symbol.iterator](); }
    keys() { return this._pairs().map(function (p) { return p[0]; })[Symbol.iterator](); }
    values() { return this._pairs().map(function (p) { return p[1]; })[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
  }
  define("Headers", Headers);

  // The answer of fetch(): the fetch standard's Response, read whole (the
  // host buffers the body, up to http_fetch's limit), its body readable once.
  class Response {
    constructor(body, init) {
      init = init || {};
      this.status = init.status === undefined ? 200 : init.status;
      this.statusText = init.statusText === undefined ? "" : String(init.statusText);
      this.ok = this.status >= 200 && this.status < 300;
      this.headers = new Headers(init.headers);
      this.url = init.url || "";
      this.redirected = false;
      this.type = "default";
      this._used = false;
      if (body === undefined || body === null) this._bytes = new Uint8Array(0);
      else if (toBytes(body)) this._bytes = toBytes(body).slice();
      else {
        this._bytes = new Uint8Array(host.utf8encode(String(body)));
        if (!this.headers.has("content-type")) this.headers.set("content-type", "text/plain;charset=UTF-8");
      }
    }
    get bodyUsed() { return this._used; }
    _take() {
      if (this._used) return Promise.reject(new TypeError("Response body is already used"));
      this._used = true;
      return Promise.resolve(this._bytes);
    }
    arrayBuffer() { return this._take().then(function (b) { return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength); }); }
    bytes() { return this._take().then(function (b) { return b.slice(); }); }
    text() { return this._take().then(function (b) { return host.utf8decode(b, false); }); }
    json() { return this.text().then(function (s) { return JSON.parse(s); }); }
    static json(data, init) {
      var h = new Headers(init && init.headers);
      if (!h.has("content-type")) h.set("content-type", "application/json");
      return new Response(JSON.stringify(data), Object.assign({}, init, { headers: h }));
    }
    clone() {
      if (this._used) throw new TypeError("Response body is already used");
      var r = new Response(this._bytes, { status: this.status, statusText: this.statusText, headers: this.headers, url: this.url });
      r.redirected = this.redirected;
      r.type = this.type;
      return r;
    }
  }
  define("Response", Response);

  // fetch(input, init): the standard global over http_fetch (same
  // allow-list, limits and errors). input is a URL string, a URL, or an
  // object with url (and method, headers, body); init's method, headers
  // (object, pairs or Headers) and body (string, bytes, URLSearchParams)
  // as in the standard. A request the host did not make rejects with a
  // FetchError, a TypeError as the standard's network errors are.
  async function fetch(input, init) {
    init = init || {};
    var url, method, headers, body;
    if (input && typeof input === "object" && !(input instanceof URL) && typeof input.url === "string") {
      url = input.url; method = input.method; headers = input.headers; body = input.body;
    } else {
      url = String(input);
    }
    if (init.method !== undefined) method = init.method;
    if (init.headers !== undefined) headers = init.headers;
    if (init.body !== undefined) body = init.body;
    method = String(method || "GET").toUpperCase();
    var h = new Headers(headers);
    var req = { url: url, method: method };
    if (body !== undefined && body !== null) {
      if (method === "GET" || method === "HEAD") throw new TypeError("fetch: a " + method + " request cannot have a body");
      var bytes = toBytes(body);
      if (bytes) {
        req.body = host.b64encode(bytes);
        req.body_encoding = "base64";
      } else if (body instanceof URLSearchParams) {
        req.body = body.toString();
        if (!h.has("content-type")) h.set("content-type", "application/x-www-form-urlencoded;charset=UTF-8");
      } else {
        req.body = String(body);
        if (!h.has("content-type")) h.set("content-type", "text/plain;charset=UTF-8");
      }
    }
    req.headers = {};
    h.forEach(function (v, k) { req.headers[k] = v; });
    var reply = JSON.parse(host.http_fetch(JSON.stringify(req)));
    if (reply.error) throw new FetchError(reply.error);
    var data = reply.body_encoding === "base64" ? new Uint8Array(host.b64decode(reply.body || "")) : new Uint8Array(host.utf8encode(reply.body || ""));
    return new Response(data, { status: reply.status, headers: reply.headers || {}, url: url });
  }
  define("fetch", fetch);

  // email.send(to, subject, textOrFields): the seed's email helper, over
  // http_fetch to an HTTP email API in Resend's shape (POST {from, to,
  // subject, text} with "Authorization: Bearer <key>"). The function's
  // config.env names EMAIL_API_URL (and EMAIL_API_KEY, a secret, and
  // EMAIL_FROM); the API's host must be in allowed_hosts. Resolves to the
  // API's JSON answer; rejects when it answers other than 2xx.
  define("email", {
    send: async function send(to, subject, text) {
      var url = host.env("EMAIL_API_URL");
      if (!url) throw new Error("email.send: EMAIL_API_URL is not set or not in the function's config.env");
      var msg = { from: host.env("EMAIL_FROM") || "AeroDB <welcome@example.com>", to: Array.isArray(to) ? to : [String(to)], subject: String(subject) };
      if (text && typeof text === "object") Object.assign(msg, text);
      else msg.text = text === undefined ? String(subject) : String(text);
      var headers = { "content-type": "application/json" };
      var key = host.env("EMAIL_API_KEY");
      if (key) headers.authorization = "Bearer " + key;
      var res = await http_fetch(url, { method: "POST", headers: headers, body: JSON.stringify(msg) });
      if (!res.ok) throw new Error("email.send: the email API answered " + res.status + ": " + res.body.slice(0, 200));
      try { return JSON.parse(res.body); } catch (e) { return res.body; }
    },
  });
  define("http", {
    fetch: http_fetch,
    get: function (url, opts) { return http_fetch(url, Object.assign({}, opts, { method: "GET" })); },
    post: function (url, body, opts) { return http_fetch(url, Object.assign({}, opts, { method: "POST", body: body })); },
    put: function (url, body, opts) { return http_fetch(url, Object.assign({}, opts, { method: "PUT", body: body })); },
    patch: function (url, body, opts) { return http_fetch(url, Object.assign({}, opts, { method: "PATCH", body: body })); },
    delete: function (url, opts) { return http_fetch(url, Object.assign({}, opts, { method: "DELETE" })); },
  });

  // crypto: random bytes from the host's CSPRNG on every call.
  function getRandomValues(a) {
    if (!ArrayBuffer.isView(a) || a instanceof Float32Array || a instanceof Float64Array || a instanceof DataView) {
      throw new TypeError("getRandomValues: expected an integer typed array");
    }
    if (a.byteLength > 65536) throw new RangeError("getRandomValues: at most 65536 bytes");
    new Uint8Array(a.buffer, a.byteOffset, a.byteLength).set(new Uint8Array(host.random(a.byteLength)));
    return a;
  }
  function randomUUID() {
    var b = new Uint8Array(host.random(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = [];
    for (var i = 0; i < 16; i++) h.push((b[i] + 0x100).toString(16).slice(1));
    return h.slice(0, 4).join("") + "-" + h.slice(4, 6).join("") + "-" + h.slice(6, 8).join("") + "-" +
      h.slice(8, 10).join("") + "-" + h.slice(10).join("");
  }
  define("crypto", { getRandomValues: getRandomValues, randomUUID: randomUUID });

  // TextEncoder / TextDecoder: UTF-8 only, as in the web platform.
  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(s) { return new Uint8Array(host.utf8encode(s === undefined ? "" : String(s))); }
  }
  class TextDecoder {
    constructor(label, opts) {
      label = (label === undefined ? "utf-8" : String(label)).toLowerCase();
      if (label !== "utf-8" && label !== "utf8") throw new RangeError("TextDecoder: only utf-8 is supported");
      this.fatal = !!(opts && opts.fatal);
    }
    get encoding() { return "utf-8"; }
    decode(v) {
      if (v === undefined) return "";
      var b = toBytes(v);
      if (!b) throw new TypeError("TextDecoder.decode: expected an ArrayBuffer or a view");
      return host.utf8decode(b, this.fatal);
    }
  }
  define("TextEncoder", TextEncoder);
  define("TextDecoder", TextDecoder);

  define("btoa", function btoa(s) {
    s = String(s);
    var b = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) {
      var c = s.charCodeAt(i);
      if (c > 255) throw new Error("btoa: the string contains characters outside Latin1");
      b[i] = c;
    }
    return host.b64encode(b);
  });
  define("atob", function atob(s) {
    var b = new Uint8Array(host.b64decode(String(s).replace(/[\t\n\f\r ]/g, "")));
    var out = "";
    for (var i = 0; i < b.length; i += 4096) out += String.fromCharCode.apply(null, b.subarray(i, i + 4096));
    return out;
  });

  // URLSearchParams and URL (parsing by runner.js's parseURL).
  function formDecode(s) { return decodeURIComponent(s.replace(/\+/g, " ")); }
  function formEncode(s) {
    return encodeURIComponent(s).replace(/%20/g, "+").replace(/[!'()~]/g, function (c) {
      return "%" + c.charCodeAt(0).toString(16).toUpperCase();
    });
  }
  class URLSearchParams {
    constructor(init) {
      this._list = [];
      this._url = null;
      if (init === undefined || init === null) return;
      if (typeof init === "string") {
        this._parse(init);
      } else if (init instanceof URLSearchParams) {
        this._list = init._list.map(function (p) { return [p[0], p[1]]; });
      } else if (typeof init[Symbol.iterator] === "function") {
        for (var p of init) this._list.push([String(p[0]), String(p[1])]);
      } else {
        for (var k of Object.keys(init)) this._list.push([k, String(init[k])]);
      }
    }
    _parse(s) {
      this._list = [];
      if (s.charAt(0) === "?") s = s.slice(1);
      var parts = s.split("&");
      for (var i = 0; i < parts.length; i++) {
        if (parts[i] === "") continue;
        var eq = parts[i].indexOf("=");
        if (eq < 0) this._list.push([formDecode(parts[i]), ""]);
        else this._list.push([formDecode(parts[i].slice(0, eq)), formDecode(parts[i].slice(eq + 1))]);
      }
    }
    _update() { if (this._url) this._url._search = this.toString(); }
    get size() { return this._list.length; }
    append(k, v) { this._list.push([String(k), String(v)]); this._update(); }
    delete(k) { k = String(k); this._list = this._list.filter(function (p) { return p[0] !== k; }); this._update(); }
    get(k) { k = String(k); for (var p of this._list) if (p[0] === k) return p[1]; return null; }
    getAll(k) { k = String(k); return this._list.filter(function (p) { return p[0] === k; }).map(function (p) { return p[1]; }); }
    has(k) { return this.get(k) !== null; }
    set(k, v) {
      k = String(k); v = String(v);
      var i = this._list.findIndex(function (p) { return p[0] === k; });
      if (i < 0) this._list.push([k, v]);
      else {
        this._list[i][1] = v;
        this._list = this._list.filter(function (p, j) { return j <= i || p[0] !== k; });
      }
      this._update();
    }
    sort() { this._list.sort(function (a, b) { return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0; }); this._update(); }
    forEach(f, self) { for (var p of this._list) f.call(self, p[1], p[0], this); }
    keys() { return this._list.map(function (p) { return p[0]; })[Symbol.iterator](); }
    values() { return this._list.map(function (p) { return p[1]; })[Symbol.iterator](); }
    entries() { return this._list.map(function (p) { return [p[0], p[1]]; })[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return this._list.map(function (p) { return formEncode(p[0]) + "=" + formEncode(p[1]); }).join("&"); }
  }
  class URL {
    constructor(url, base) {
      var p = host.parseURL(String(url), base === undefined ? undefined : String(base));
      for (var k in p) this["_" + k] = p[k];
      this._params = new URLSearchParams(this._search);
      this._params._url = this;
    }
    get protocol() { return this._protocol; }
    get username() { return this._username; }
    get password() { return this._password; }
    get host() { return this._host; }
    get hostname() { return this._hostname; }
    get port() { return this._port; }
    get pathname() { return this._pathname; }
    get search() { return this._search === "" || this._search === "?" ? "" : this._search.charAt(0) === "?" ? this._search : "?" + this._search; }
    set search(s) { s = String(s); this._search = s; this._params._parse(s); }
    get hash() { return this._hash; }
    set hash(s) { s = String(s); this._hash = s === "" ? "" : s.charAt(0) === "#" ? s : "#" + s; }
    get searchParams() { return this._params; }
    get origin() { return this._host ? this._protocol + "//" + this._host : "null"; }
    get href() {
      var auth = this._username ? this._username + (this._password ? ":" + this._password : "") + "@" : "";
      var slashes = this._host || this._protocol === "file:" ? "//" : "";
      return this._protocol + slashes + auth + this._host + this._pathname + this.search + this._hash;
    }
    toString() { return this.href; }
    toJSON() { return this.href; }
  }
  define("URL", URL);

  // Timers, run by the call: when the handler's promise is still pending,
  // the runtime runs the earliest timer (__aerofn_tick), sleeping in the
  // host until it is due, then the promise jobs it caused, and again, until
  // the promise settles, no timer is left, or the call's deadline ends it.
  // Timers still pending when the promise settles are dropped with the call.
  var timers = [];
  var timerSeq = 0;
  function addTimer(name, fn, ms, args, repeat) {
    if (typeof fn !== "function") throw new TypeError(name + ": the callback must be a function");
    ms = Math.floor(Number(ms));
    if (!(ms > 0)) ms = 0;
    var id = ++timerSeq;
    timers.push({ id: id, seq: id, due: Date.now() + ms, fn: fn, args: args, every: repeat ? ms : -1 });
    return id;
  }
  function clearTimer(id) {
    for (var i = 0; i < timers.length; i++) {
      if (timers[i].id === id) { timers.splice(i, 1); return; }
    }
  }
  define("setTimeout", function setTimeout(fn, ms) { return addTimer("setTimeout", fn, ms, Array.prototype.slice.call(arguments, 2), false); });
  define("setInterval", function setInterval(fn, ms) { return addTimer("setInterval", fn, ms, Array.prototype.slice.call(arguments, 2), true); });
  define("clearTimeout", function clearTimeout(id) { clearTimer(id); });
  define("clearInterval", function clearInterval(id) { clearTimer(id); });
  define("queueMicrotask", function queueMicrotask(fn) {
    if (typeof fn !== "function") throw new TypeError("queueMicrotask: the callback must be a function");
    Promise.resolve().then(function () { fn(); });
  });
  // __aerofn_tick runs the earliest due timer (ties in the order they were
  // set) and reports whether there was one. A callback's exception fails
  // the call, as an uncaught error ends a Deno program.
  global.__aerofn_tick = function () {
    if (timers.length === 0) return false;
    var k = 0;
    for (var i = 1; i < timers.length; i++) {
      var a = timers[i], b = timers[k];
      if (a.due < b.due || (a.due === b.due && a.seq < b.seq)) k = i;
    }
    var t = timers[k];
    var wait = t.due - Date.now();
    if (wait > 0) host.sleep(wait);
    if (t.every >= 0) {
      t.due = Math.max(t.due + t.every, Date.now());
      t.seq = ++timerSeq;
    } else {
      timers.splice(timers.indexOf(t), 1);
    }
    t.fn.apply(undefined, t.args);
    return true;
  };
  define("URLSearchParams", URLSearchParams);
  define("globalThis", global);

  // __aerofn_invoke runs the bundle's handler on one event and resolves to
  // the JSON text of its result, or "" for undefined. The handler is the export named handler,
  // else the default export, else the module's only exported function.
  function pickHandler(exports) {
    if (!exports || (typeof exports !== "object" && typeof exports !== "function")) return null;
    if (typeof exports.handler === "function") return exports.handler;
    if (typeof exports.default === "function") return exports.default;
    var fns = Object.keys(exports).filter(function (k) { return typeof exports[k] === "function"; });
    return fns.length === 1 ? exports[fns[0]] : null;
  }
  // The handler's argument is the event's payload, when it has one: an
  // HTTP or webhook JSON object body, a database event's new row (old row
  // for a DELETE). The event itself is the payload's prototype, so its
  // fields (trigger, method, headers, body, table, new, old...) are read
  // through it unless the payload has a field of the same name, and
  // JSON.stringify(arg) is the payload alone. Without a payload the
  // argument is the event.
  function eventArg(ev) {
    if (!ev || typeof ev !== "object" || Array.isArray(ev)) return ev;
    var payload = null;
    if (ev.trigger === "http" || ev.trigger === "webhook") {
      payload = ev.body;
    } else if (ev.trigger === "database") {
      payload = ev.new || ev.old || null;
    }
    if (!payload || typeof payload !== "object" || Array.isArray(payload)) return ev;
    var arg = Object.assign({}, payload);
    Object.setPrototypeOf(arg, ev);
    return arg;
  }
  global.__aerofn_invoke = async function (exports, eventJSON) {
    var fn = pickHandler(exports);
    if (!fn) {
      throw new Error("the module exports no handler: export a function named handler, a default function, or exactly one function");
    }
    var result = await fn(eventArg(JSON.parse(eventJSON)));
    // A Response (as Workers and Deno handlers return) is the HTTP result
    // it describes: its body as text when it is UTF-8, else base64.
    if (result instanceof Response) {
      var headers = {};
      result.headers.forEach(function (v, k) { headers[k] = k === "set-cookie" ? result.headers.getSetCookie() : v; });
      var bytes = result._used ? new Uint8Array(0) : result._bytes;
      var http = { statusCode: result.status, headers: headers };
      try {
        http.body = host.utf8decode(bytes, true);
      } catch (e) {
        http.body = host.b64encode(bytes);
        http.isBase64Encoded = true;
      }
      result = http;
    }
    // undefined (a handler that returns nothing) is an empty result: 204.
    var out = JSON.stringify(result);
    return out === undefined ? "" : out;
  };
})(this, __host);
