// The QuickJS runtime's side of a call (runtime.c): it runs once, when the
// runtime initialises, after prelude.js, and returns [run, describe, tick].
// host is the object of C primitives prelude.js received; parseURL, which
// prelude.js's URL class calls, is written here.
(function (host) {
  "use strict";
  var global = globalThis;
  var invoke = global.__aerofn_invoke;
  var tick = global.__aerofn_tick;
  delete global.__aerofn_invoke;
  delete global.__aerofn_tick;

  // run calls the handler; the promise jobs then run in C, after which
  // state[0] is 1 (fulfilled, state[1] the output) or 2 (rejected, state[1]
  // the reason), or still 0 when the promise never settled.
  function run(exports, eventJSON) {
    var state = [0, undefined];
    invoke(exports, eventJSON).then(
      function (v) { state[0] = 1; state[1] = v; },
      function (e) { state[0] = 2; state[1] = e; });
    return state;
  }

  // describe is the text of a thrown value: an Error's name, message and
  // stack, its positions in the bundle mapped to the user's files by the
  // bundle's inline source map, or the value's string form.
  function describe(e, script) {
    if (e === undefined) return "the handler threw undefined";
    if (!(e instanceof Error) && !(e && typeof e === "object" && typeof e.stack === "string")) return String(e);
    var head = String(e);
    var stack = typeof e.stack === "string" ? e.stack.replace(/\s+$/, "") : "";
    if (stack) {
      var map = null;
      stack = stack.replace(/function\.js:(\d+)/g, function (all, line) {
        if (map === null) map = sourceMap(script) || false;
        return map && map[line - 1] ? map[line - 1] : all;
      });
    }
    return stack ? head + "\n" + stack : head;
  }

  // sourceMap returns, for each generated line of the bundle, "file:line"
  // of the first mapped position on it, from an inline source map.
  var VLQ = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  function sourceMap(script) {
    var key = "//# sourceMappingURL=data:application/json;base64,";
    var at = script.lastIndexOf(key);
    if (at < 0) return null;
    var end = script.indexOf("\n", at);
    var sm;
    try {
      sm = JSON.parse(host.utf8decode(host.b64decode(script.slice(at + key.length, end < 0 ? undefined : end).trim()), false));
    } catch (err) {
      return null;
    }
    var out = [], src = 0, line = 0, lines = String(sm.mappings || "").split(";");
    for (var i = 0; i < lines.length; i++) {
      var segs = lines[i] === "" ? [] : lines[i].split(",");
      for (var j = 0; j < segs.length; j++) {
        var f = decodeVLQ(segs[j]);
        if (f.length >= 4) {
          src += f[1];
          line += f[2];
          if (out[i] === undefined) out[i] = (sm.sources && sm.sources[src] ? String(sm.sources[src]).replace(/^(\.\.\/)+/, "") : "?") + ":" + (line + 1);
        }
      }
    }
    return out;
  }
  function decodeVLQ(s) {
    var out = [], v = 0, shift = 0;
    for (var i = 0; i < s.length; i++) {
      var d = VLQ.indexOf(s.charAt(i));
      v += (d & 31) << shift;
      if (d & 32) {
        shift += 5;
      } else {
        out.push(v & 1 ? -(v >>> 1) : v >>> 1);
        v = 0;
        shift = 0;
      }
    }
    return out;
  }

  // parseURL resolves s against base (RFC 3986, section 5) and returns the
  // parts prelude.js's URL class exposes, or throws TypeError.
  function split(s) {
    var m = /^(?:([A-Za-z][A-Za-z0-9+.\-]*):)?(?:\/\/([^\/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/.exec(s);
    return {
      scheme: m[1] === undefined ? null : m[1].toLowerCase(),
      auth: m[2] === undefined ? null : m[2],
      path: m[3],
      query: m[4] === undefined ? null : m[4],
      frag: m[5] === undefined ? null : m[5],
    };
  }
  function removeDots(p) {
    var out = [], segs = p.split("/");
    for (var i = 0; i < segs.length; i++) {
      var s = segs[i];
      if (s === ".") {
        if (i === segs.length - 1) out.push("");
      } else if (s === "..") {
        if (out.length > 1) out.pop();
        if (i === segs.length - 1) out.push("");
      } else {
        out.push(s);
      }
    }
    var r = out.join("/");
    if (p.charAt(0) === "/" && r.charAt(0) !== "/") r = "/" + r;
    return r;
  }
  function escapeExtra(s, keep) {
    return s.replace(/[^\u0000-\u007f]|[\u0000-\u0020"<>\\^`{|}\u007f]/gu, function (c) {
      return keep.indexOf(c) >= 0 ? c : encodeURIComponent(c).replace(/%7C/g, "%7C");
    });
  }
  function parseURL(s, base) {
    var bad = function () { return new TypeError("Invalid URL: " + s); };
    s = String(s).replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, "");
    var r = split(s), u;
    if (r.scheme !== null) {
      u = r;
      u.path = u.auth !== null || u.path.charAt(0) === "/" ? removeDots(u.path) : u.path;
    } else {
      if (base === undefined || base === null) throw bad();
      var b = split(String(base).trim());
      if (b.scheme === null) throw bad();
      u = { scheme: b.scheme, auth: b.auth, path: b.path, query: b.query, frag: r.frag };
      if (r.auth !== null) {
        u.auth = r.auth; u.path = removeDots(r.path); u.query = r.query;
      } else if (r.path === "") {
        if (r.query !== null) u.query = r.query;
      } else {
        if (r.path.charAt(0) === "/") {
          u.path = removeDots(r.path);
        } else {
          var bp = b.auth !== null && b.path === "" ? "/" : b.path;
          u.path = removeDots(bp.slice(0, bp.lastIndexOf("/") + 1) + r.path);
        }
        u.query = r.query;
      }
    }
    var special = u.scheme === "http" || u.scheme === "https";
    if (special && (u.auth === null || u.auth === "")) throw bad();
    var user = "", pass = "", hostport = u.auth === null ? "" : u.auth;
    var at = hostport.lastIndexOf("@");
    if (at >= 0) {
      var ui = hostport.slice(0, at);
      hostport = hostport.slice(at + 1);
      var c = ui.indexOf(":");
      user = c < 0 ? ui : ui.slice(0, c);
      pass = c < 0 ? "" : ui.slice(c + 1);
    }
    hostport = hostport.toLowerCase();
    var hostname = hostport, port = "";
    var m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(hostport);
    if (!m) throw bad();
    hostname = m[1];
    port = m[2] || "";
    if (/[\s<>"{}|\\^`]/.test(hostname)) throw bad();
    if ((u.scheme === "http" && port === "80") || (u.scheme === "https" && port === "443")) port = "";
    var host = port ? hostname + ":" + port : hostname;
    var path = u.path;
    if (path === "" && (u.auth !== null || special)) path = "/";
    return {
      protocol: u.scheme + ":",
      username: user,
      password: pass,
      host: host,
      hostname: hostname.replace(/^\[|\]$/g, ""),
      port: port,
      pathname: escapeExtra(path, ""),
      search: u.query ? "?" + escapeExtra(u.query, "") : "",
      hash: u.frag ? "#" + escapeExtra(u.frag, "") : "",
    };
  }
  host.parseURL = parseURL;

  return [run, describe, tick];
})
