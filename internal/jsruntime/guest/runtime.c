/*
 * aerofn's JavaScript runtime: QuickJS built for wasm32-wasi as one
 * WebAssembly module (scripts/build-jsrt.sh fetches the QuickJS sources and
 * builds it; none is kept in this repository).
 *
 * Initialisation (a QuickJS runtime and context, the host API's globals of
 * prelude.js and runner.js) runs in _initialize, as a C constructor, which
 * the engine snapshots once per node (docs/ABI.md, "Initialisation runs
 * once per version"). Each call then reads its input, framed by the host as
 *
 *     mode byte | uint32 little-endian n | n bytes of code | the rest
 *
 * 'c' (compile, once per function version): the code is the bundled
 *     script; the output is its QuickJS bytecode (JS_WriteObject).
 * 'b' (a call): the code is that bytecode; the rest is uint32 m | m bytes
 *     of the script from its source map line on (for error stacks) | the
 *     event JSON.
 * 's' (a call before the bytecode exists): the code is the script; the
 *     rest is the event JSON.
 *
 * A call evaluates the script's top level (JS_EvalFunction of the read
 * bytecode, or JS_Eval of the source), calls its handler with the event,
 * runs the promise jobs to completion and writes the JSON of what the
 * handler returned (or resolved to) as the output.
 *
 * QuickJS is compiled in this translation unit so that the runtime can
 * reseed Math.random's state per call (ctx->random_state is internal).
 */
#include <malloc.h> /* malloc_usable_size, which quickjs.c uses undeclared */
#include <fenv.h>
/* WebAssembly has one rounding mode: QuickJS's fesetround calls for these
 * fail and leave it, so a tie in toFixed/toPrecision/toExponential rounds
 * to even (the engine's printf) rather than away from zero; the three
 * are corrected below (aerofn_to_fixed and the two after it). */
#ifndef FE_DOWNWARD
#define FE_DOWNWARD 0x400
#endif
#ifndef FE_UPWARD
#define FE_UPWARD 0x800
#endif
#include "quickjs.c"
/* quickjs.c forbids the C allocator past its own; the glue uses it. */
#undef malloc
#undef free
#undef realloc

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AEROFN_IMPORT(name) __attribute__((import_module("aerodb"), import_name(name)))

AEROFN_IMPORT("input_len") int32_t aerodb_input_len(void);
AEROFN_IMPORT("input_read") int32_t aerodb_input_read(void *ptr, int32_t n);
AEROFN_IMPORT("output") int32_t aerodb_output(const void *ptr, int32_t n);
AEROFN_IMPORT("log") void aerodb_log(int32_t level, const void *ptr, int32_t n);
AEROFN_IMPORT("env") int32_t aerodb_env(const void *key, int32_t n);
AEROFN_IMPORT("db_query") int32_t aerodb_db_query(const void *req, int32_t n);
AEROFN_IMPORT("http_fetch") int32_t aerodb_http_fetch(const void *req, int32_t n);
AEROFN_IMPORT("reply_read") int32_t aerodb_reply_read(void *ptr, int32_t n);

/* The sources of the host API, generated from prelude.js and runner.js. */
#include "aerofn_js.h"

/* The shadow stack (in linear memory, AEROFN_STACK_SIZE, set at link by
 * scripts/build-jsrt.sh) bounds JavaScript recursion: QuickJS throws
 * InternalError "stack overflow" when a call would leave less than the
 * margin, which C code below a JavaScript frame (JSON, regexps, the host
 * functions) needs. Each JavaScript call also uses about 2-4 times its
 * shadow stack bytes of the engine's native stack (Config.MaxWasmStack,
 * 2 MiB by default); 384 KiB here is about 1,400 nested calls, which stays
 * inside it. */
#ifndef AEROFN_STACK_SIZE
#define AEROFN_STACK_SIZE (512 * 1024)
#endif
#ifndef AEROFN_JS_STACK
#define AEROFN_JS_STACK (AEROFN_STACK_SIZE - 128 * 1024)
#endif

static JSRuntime *aerofn_rt;
static JSContext *aerofn_ctx;
static JSValue aerofn_run;      /* runner.js's run(exports, eventJSON) -> state */
static JSValue aerofn_describe; /* runner.js's describe(thrown, script) -> text */
static JSValue aerofn_tick;     /* prelude.js's __aerofn_tick() -> whether a timer ran */

static void aerofn_fatal(const char *msg)
{
    aerodb_output(msg, (int32_t)strlen(msg));
    abort();
}

/* ---- host primitives (the __host object prelude.js receives) ---- */

static JSValue aerofn_reply(JSContext *ctx, int32_t n)
{
    if (n <= 0)
        return JS_NewStringLen(ctx, "", 0);
    char *buf = malloc((size_t)n);
    if (!buf)
        return JS_ThrowOutOfMemory(ctx);
    int32_t got = aerodb_reply_read(buf, n);
    if (got < 0)
        got = 0;
    JSValue v = JS_NewStringLen(ctx, buf, (size_t)got);
    free(buf);
    return v;
}

static JSValue h_log(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    int32_t level;
    size_t n;
    if (JS_ToInt32(ctx, &level, argv[0]))
        return JS_EXCEPTION;
    const char *s = JS_ToCStringLen(ctx, &n, argv[1]);
    if (!s)
        return JS_EXCEPTION;
    aerodb_log(level, s, (int32_t)n);
    JS_FreeCString(ctx, s);
    return JS_UNDEFINED;
}

static JSValue h_env(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    size_t n;
    const char *k = JS_ToCStringLen(ctx, &n, argv[0]);
    if (!k)
        return JS_EXCEPTION;
    int32_t r = aerodb_env(k, (int32_t)n);
    JS_FreeCString(ctx, k);
    if (r < 0)
        return JS_UNDEFINED;
    return aerofn_reply(ctx, r);
}

/* host_request sends argv[0]'s text to a host import that answers with a
 * reply (db_query, http_fetch) and returns the reply's text. */
static JSValue host_request(JSContext *ctx, JSValueConst arg, int32_t (*send)(const void *, int32_t))
{
    size_t n;
    const char *req = JS_ToCStringLen(ctx, &n, arg);
    if (!req)
        return JS_EXCEPTION;
    int32_t r = send(req, (int32_t)n);
    JS_FreeCString(ctx, req);
    return aerofn_reply(ctx, r);
}

static JSValue h_db_query(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    return host_request(ctx, argv[0], aerodb_db_query);
}

static JSValue h_http_fetch(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    return host_request(ctx, argv[0], aerodb_http_fetch);
}

static JSValue h_random(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    int32_t n;
    if (JS_ToInt32(ctx, &n, argv[0]))
        return JS_EXCEPTION;
    if (n < 0 || n > 65536)
        return JS_ThrowTypeError(ctx, "random: %d bytes asked, at most 65536", n);
    uint8_t buf[256];
    uint8_t *b = n <= (int32_t)sizeof(buf) ? buf : malloc((size_t)n);
    if (!b)
        return JS_ThrowOutOfMemory(ctx);
    for (int32_t off = 0; off < n; off += 256) {
        int32_t k = n - off < 256 ? n - off : 256;
        if (getentropy(b + off, (size_t)k) != 0)
            aerofn_fatal("aerofn js runtime: the host gave no random bytes");
    }
    JSValue v = JS_NewArrayBufferCopy(ctx, b, (size_t)n);
    if (b != buf)
        free(b);
    return v;
}

/* bytes_of returns the bytes of an ArrayBuffer or a typed array (a view). */
static uint8_t *bytes_of(JSContext *ctx, JSValueConst v, size_t *len)
{
    size_t off, n, bpe;
    JSValue ab = JS_GetTypedArrayBuffer(ctx, v, &off, &n, &bpe);
    if (!JS_IsException(ab)) {
        size_t total;
        uint8_t *p = JS_GetArrayBuffer(ctx, &total, ab);
        JS_FreeValue(ctx, ab);
        if (!p)
            return NULL;
        *len = n;
        return p + off;
    }
    JS_FreeValue(ctx, JS_GetException(ctx));
    uint8_t *p = JS_GetArrayBuffer(ctx, len, v);
    if (!p) {
        JS_FreeValue(ctx, JS_GetException(ctx));
        JS_ThrowTypeError(ctx, "expected an ArrayBuffer or a Uint8Array");
    }
    return p;
}

static JSValue h_utf8encode(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    size_t n;
    const char *s = JS_ToCStringLen(ctx, &n, argv[0]);
    if (!s)
        return JS_EXCEPTION;
    JSValue v = JS_NewArrayBufferCopy(ctx, (const uint8_t *)s, n);
    JS_FreeCString(ctx, s);
    return v;
}

/* utf8_seq is the length of the valid UTF-8 sequence at p (at most n bytes
 * available), or 0 when the bytes there are not one. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && p[1] < 0xa0)
            return 0; /* overlong */
        if (c == 0xed && p[1] >= 0xa0)
            return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && p[1] < 0x90)
            return 0;
        if (c == 0xf4 && p[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

static JSValue h_utf8decode(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    size_t n;
    uint8_t *b = bytes_of(ctx, argv[0], &n);
    if (!b)
        return JS_EXCEPTION;
    int fatal = JS_ToBool(ctx, argv[1]);
    size_t i = 0, bad = 0;
    while (i < n) {
        size_t k = utf8_seq(b + i, n - i);
        if (!k) {
            bad++;
            i++;
        } else {
            i += k;
        }
    }
    if (!bad)
        return JS_NewStringLen(ctx, (const char *)b, n);
    if (fatal)
        return JS_ThrowTypeError(ctx, "The encoded data was not valid UTF-8");
    /* Each run of invalid bytes becomes one U+FFFD. */
    char *out = malloc(n + 3 * bad);
    if (!out)
        return JS_ThrowOutOfMemory(ctx);
    size_t o = 0;
    int in_bad = 0;
    for (i = 0; i < n;) {
        size_t k = utf8_seq(b + i, n - i);
        if (!k) {
            if (!in_bad) {
                memcpy(out + o, "\xef\xbf\xbd", 3);
                o += 3;
            }
            in_bad = 1;
            i++;
        } else {
            memcpy(out + o, b + i, k);
            o += k;
            i += k;
            in_bad = 0;
        }
    }
    JSValue v = JS_NewStringLen(ctx, out, o);
    free(out);
    return v;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static JSValue h_b64encode(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    size_t n;
    uint8_t *b = bytes_of(ctx, argv[0], &n);
    if (!b)
        return JS_EXCEPTION;
    size_t outn = (n + 2) / 3 * 4;
    char *out = malloc(outn + 1);
    if (!out)
        return JS_ThrowOutOfMemory(ctx);
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t x = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        out[o++] = b64chars[x >> 18];
        out[o++] = b64chars[(x >> 12) & 63];
        out[o++] = b64chars[(x >> 6) & 63];
        out[o++] = b64chars[x & 63];
    }
    if (i < n) {
        uint32_t x = (uint32_t)b[i] << 16 | (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0);
        out[o++] = b64chars[x >> 18];
        out[o++] = b64chars[(x >> 12) & 63];
        out[o++] = i + 1 < n ? b64chars[(x >> 6) & 63] : '=';
        out[o++] = '=';
    }
    JSValue v = JS_NewStringLen(ctx, out, o);
    free(out);
    return v;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static JSValue h_b64decode(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    size_t n;
    const char *s = JS_ToCStringLen(ctx, &n, argv[0]);
    if (!s)
        return JS_EXCEPTION;
    /* Padding is optional; anything after it, or a lone trailing sixth
     * bit group, is an error. */
    size_t end = n;
    while (end > 0 && s[end - 1] == '=' && n - end < 2)
        end--;
    if ((end % 4) == 1 || (end != n && (n % 4) != 0)) {
        JS_FreeCString(ctx, s);
        return JS_ThrowTypeError(ctx, "invalid base64: bad length");
    }
    uint8_t *out = malloc(end / 4 * 3 + 3);
    if (!out) {
        JS_FreeCString(ctx, s);
        return JS_ThrowOutOfMemory(ctx);
    }
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < end; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            JS_FreeCString(ctx, s);
            return JS_ThrowTypeError(ctx, "invalid base64: illegal data at input byte %d", (int)i);
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    JS_FreeCString(ctx, s);
    JSValue r = JS_NewArrayBufferCopy(ctx, out, o);
    free(out);
    return r;
}

/* sleep(ms) blocks in the host until a timer is due: nanosleep is WASI's
 * poll_oneoff, which the engine bounds by the call's deadline and during
 * which it lends the call's run slot. */
static JSValue h_sleep(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    double ms;
    if (JS_ToFloat64(ctx, &ms, argv[0]))
        return JS_EXCEPTION;
    if (ms > 0 && ms < 1e12) {
        struct timespec ts;
        ts.tv_sec = (time_t)(ms / 1000);
        ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000) * 1e6);
        nanosleep(&ts, NULL);
    }
    return JS_UNDEFINED;
}

static const JSCFunctionListEntry aerofn_host_funcs[] = {
    JS_CFUNC_DEF("sleep", 1, h_sleep),
    JS_CFUNC_DEF("log", 2, h_log),
    JS_CFUNC_DEF("env", 1, h_env),
    JS_CFUNC_DEF("db_query", 1, h_db_query),
    JS_CFUNC_DEF("http_fetch", 1, h_http_fetch),
    JS_CFUNC_DEF("random", 1, h_random),
    JS_CFUNC_DEF("utf8encode", 1, h_utf8encode),
    JS_CFUNC_DEF("utf8decode", 2, h_utf8decode),
    JS_CFUNC_DEF("b64encode", 1, h_b64encode),
    JS_CFUNC_DEF("b64decode", 1, h_b64decode),
};

/* ---- toFixed, toPrecision, toExponential: ties away from zero ---- */

/* QuickJS rounds a tie in toFixed away from zero (as the specification
 * says) by switching the FPU's rounding mode around printf; WebAssembly has
 * only round-to-nearest-even, so (2.5).toFixed(0) would be "2". A double is
 * a tie at f decimals exactly when its binary fraction has f+1 digits in
 * decimal, that is when it has f+1 fraction bits (its expansion then ends
 * in a 5 at place f+1). Only those are formatted here; every other number
 * goes to QuickJS's own toFixed, which is exact for them. */
static int fraction_bits(double a)
{
    int e;
    double m = frexp(a, &e);
    uint64_t im = (uint64_t)ldexp(m, 53);
    if (im == 0)
        return 0;
    int p = 53 - e - __builtin_ctzll(im);
    return p > 0 ? p : 0;
}

static JSValue aerofn_to_fixed(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    double d;
    int f;
    JSValue v = js_thisNumberValue(ctx, this_val);
    if (JS_IsException(v))
        return v;
    if (JS_ToFloat64Free(ctx, &d, v))
        return JS_EXCEPTION;
    if (JS_ToInt32Sat(ctx, &f, argv[0]))
        return JS_EXCEPTION;
    if (f < 0 || f > 100 || !isfinite(d) || fabs(d) >= 1e21 || d == 0 || fraction_bits(fabs(d)) != f + 1)
        return js_number_toFixed(ctx, this_val, argc, argv);
    char buf[160];
    /* exact: the number has f+1 decimals, the last a 5 */
    int n = snprintf(buf + 2, sizeof(buf) - 2, "%.*f", f + 1, fabs(d));
    char *s = buf + 2;
    s[--n] = 0;       /* drop the 5 */
    if (f == 0)
        s[--n] = 0;   /* and the point */
    int i = n - 1;
    for (; i >= 0; i--) {
        if (s[i] == '.')
            continue;
        if (s[i] == '9') {
            s[i] = '0';
        } else {
            s[i]++;
            break;
        }
    }
    if (i < 0)
        *--s = '1';
    if (d < 0)
        *--s = '-';
    return JS_NewString(ctx, s);
}

/* tie_digits: when |d| (finite, non-zero) is a tie at P significant
 * digits, its exact expansion has P+1 significant digits, the last a 5:
 * then digits gets the P digits rounded away from zero, *exp the decimal
 * exponent of the first, and it returns 1. Otherwise 0. */
static int tie_digits(double d, int P, char *digits, int *exp)
{
    char buf[400];
    double a = fabs(d);
    int q = fraction_bits(a);
    snprintf(buf, sizeof(buf), "%.*e", P, a); /* d.ddd...e±XX, P+1 digits */
    char *e = strchr(buf, 'e');
    if (!e)
        return 0;
    int E = atoi(e + 1);
    if (q > 0) {
        if (q + E + 1 != P + 1)
            return 0;
    } else {
        /* an integer: its significant digits without trailing zeros */
        int n = snprintf(buf, sizeof(buf), "%.0f", a);
        while (n > 0 && buf[n - 1] == '0')
            n--;
        if (n != P + 1)
            return 0;
        snprintf(buf, sizeof(buf), "%.*e", P, a);
    }
    /* collect the P+1 digits (skipping the point) */
    char m[120];
    int k = 0;
    for (char *c = buf; c < e && k < (int)sizeof(m) - 1; c++)
        if (*c >= '0' && *c <= '9')
            m[k++] = *c;
    if (k != P + 1 || m[P] != '5')
        return 0;
    int i = P - 1;
    for (; i >= 0; i--) {
        if (m[i] == '9') {
            m[i] = '0';
        } else {
            m[i]++;
            break;
        }
    }
    if (i < 0) {
        m[0] = '1';
        E++;
    }
    memcpy(digits, m, (size_t)P);
    digits[P] = 0;
    *exp = E;
    return 1;
}

static JSValue number_this(JSContext *ctx, JSValueConst this_val, double *d)
{
    JSValue v = js_thisNumberValue(ctx, this_val);
    if (JS_IsException(v))
        return v;
    if (JS_ToFloat64Free(ctx, d, v))
        return JS_EXCEPTION;
    return JS_UNDEFINED;
}

/* exp_form writes sign, d.ddd (the P digits) and e±E. */
static JSValue exp_form(JSContext *ctx, int neg, const char *digits, int P, int E)
{
    char out[160];
    int o = 0;
    if (neg)
        out[o++] = '-';
    out[o++] = digits[0];
    if (P > 1) {
        out[o++] = '.';
        memcpy(out + o, digits + 1, (size_t)P - 1);
        o += P - 1;
    }
    snprintf(out + o, sizeof(out) - (size_t)o, "e%c%d", E < 0 ? '-' : '+', E < 0 ? -E : E);
    return JS_NewString(ctx, out);
}

static JSValue aerofn_to_exponential(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    double d;
    int f;
    char digits[120];
    int E;
    JSValue r = number_this(ctx, this_val, &d);
    if (JS_IsException(r))
        return r;
    if (JS_IsUndefined(argv[0]) || JS_ToInt32Sat(ctx, &f, argv[0]))
        return js_number_toExponential(ctx, this_val, argc, argv);
    if (f < 0 || f > 100 || !isfinite(d) || d == 0 || !tie_digits(d, f + 1, digits, &E))
        return js_number_toExponential(ctx, this_val, argc, argv);
    return exp_form(ctx, d < 0, digits, f + 1, E);
}

static JSValue aerofn_to_precision(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    double d;
    int p;
    char digits[120];
    int E;
    JSValue r = number_this(ctx, this_val, &d);
    if (JS_IsException(r))
        return r;
    if (JS_IsUndefined(argv[0]) || JS_ToInt32Sat(ctx, &p, argv[0]))
        return js_number_toPrecision(ctx, this_val, argc, argv);
    if (p < 1 || p > 100 || !isfinite(d) || d == 0 || !tie_digits(d, p, digits, &E))
        return js_number_toPrecision(ctx, this_val, argc, argv);
    if (E < -6 || E >= p)
        return exp_form(ctx, d < 0, digits, p, E);
    char out[240];
    int o = 0;
    if (d < 0)
        out[o++] = '-';
    if (E >= 0) {
        memcpy(out + o, digits, (size_t)E + 1);
        o += E + 1;
        if (p > E + 1) {
            out[o++] = '.';
            memcpy(out + o, digits + E + 1, (size_t)(p - E - 1));
            o += p - E - 1;
        }
    } else {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -E - 1; i++)
            out[o++] = '0';
        memcpy(out + o, digits, (size_t)p);
        o += p;
    }
    out[o] = 0;
    return JS_NewString(ctx, out);
}

/* ---- initialisation (snapshotted) ---- */

static JSValue aerofn_eval(const char *src, size_t len, const char *name)
{
    JSValue v = JS_Eval(aerofn_ctx, src, len, name, JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_STRICT);
    if (JS_IsException(v)) {
        JSValue e = JS_GetException(aerofn_ctx);
        const char *s = JS_ToCString(aerofn_ctx, e);
        aerodb_log(3, s ? s : "?", s ? (int32_t)strlen(s) : 1);
        aerofn_fatal("aerofn js runtime: initialisation failed");
    }
    return v;
}

__attribute__((constructor)) static void aerofn_init(void)
{
    aerofn_rt = JS_NewRuntime();
    if (!aerofn_rt)
        aerofn_fatal("aerofn js runtime: no runtime");
    JS_SetMaxStackSize(aerofn_rt, AEROFN_JS_STACK);
    aerofn_ctx = JS_NewContext(aerofn_rt);
    if (!aerofn_ctx)
        aerofn_fatal("aerofn js runtime: no context");
    JSValue global = JS_GetGlobalObject(aerofn_ctx);
    JSValue np = aerofn_ctx->class_proto[JS_CLASS_NUMBER];
    JS_DefinePropertyValueStr(aerofn_ctx, np, "toFixed", JS_NewCFunction(aerofn_ctx, aerofn_to_fixed, "toFixed", 1),
                              JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
    JS_DefinePropertyValueStr(aerofn_ctx, np, "toExponential",
                              JS_NewCFunction(aerofn_ctx, aerofn_to_exponential, "toExponential", 1),
                              JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
    JS_DefinePropertyValueStr(aerofn_ctx, np, "toPrecision",
                              JS_NewCFunction(aerofn_ctx, aerofn_to_precision, "toPrecision", 1),
                              JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
    JSValue host = JS_NewObject(aerofn_ctx);
    JS_SetPropertyFunctionList(aerofn_ctx, host, aerofn_host_funcs,
                               sizeof(aerofn_host_funcs) / sizeof(aerofn_host_funcs[0]));
    JS_SetPropertyStr(aerofn_ctx, global, "__host", JS_DupValue(aerofn_ctx, host));
    JS_FreeValue(aerofn_ctx, aerofn_eval(aerofn_prelude_js, sizeof(aerofn_prelude_js) - 1, "aerofn:prelude.js"));
    /* runner.js is an expression: a function of the host object that
     * returns [run, describe, tick]. */
    JSValue mk = aerofn_eval(aerofn_runner_js, sizeof(aerofn_runner_js) - 1, "aerofn:runner.js");
    JSValue pair = JS_Call(aerofn_ctx, mk, JS_UNDEFINED, 1, (JSValueConst *)&host);
    if (JS_IsException(pair))
        aerofn_fatal("aerofn js runtime: runner.js failed");
    aerofn_run = JS_GetPropertyUint32(aerofn_ctx, pair, 0);
    aerofn_describe = JS_GetPropertyUint32(aerofn_ctx, pair, 1);
    aerofn_tick = JS_GetPropertyUint32(aerofn_ctx, pair, 2);
    JS_FreeValue(aerofn_ctx, pair);
    JS_FreeValue(aerofn_ctx, mk);
    JS_FreeValue(aerofn_ctx, host);
    JSAtom a = JS_NewAtom(aerofn_ctx, "__host");
    JS_DeleteProperty(aerofn_ctx, global, a, 0);
    JS_FreeAtom(aerofn_ctx, a);
    JS_FreeValue(aerofn_ctx, global);
    /* Leave the heap tidy for the snapshot. */
    JS_RunGC(aerofn_rt);
}

/* ---- one call ---- */

static int aerofn_out_value(JSValueConst v, int ok)
{
    size_t n;
    const char *s = JS_ToCStringLen(aerofn_ctx, &n, v);
    if (!s) {
        JS_FreeValue(aerofn_ctx, JS_GetException(aerofn_ctx));
        static const char m[] = "aerofn js runtime: the result is not a string";
        aerodb_output(m, sizeof(m) - 1);
        return 1;
    }
    aerodb_output(s, (int32_t)n);
    JS_FreeCString(aerofn_ctx, s);
    return ok ? 0 : 1;
}

/* aerofn_fail writes the description of the pending exception. */
static int aerofn_fail(const char *script, size_t script_len)
{
    JSValue e = JS_GetException(aerofn_ctx);
    JSValue args[2] = {e, JS_NewStringLen(aerofn_ctx, script, script_len)};
    JSValue text = JS_Call(aerofn_ctx, aerofn_describe, JS_UNDEFINED, 2, (JSValueConst *)args);
    JS_FreeValue(aerofn_ctx, args[1]);
    if (JS_IsException(text)) {
        JS_FreeValue(aerofn_ctx, JS_GetException(aerofn_ctx));
        text = JS_ToString(aerofn_ctx, e);
    }
    JS_FreeValue(aerofn_ctx, e);
    int rc = aerofn_out_value(text, 0);
    JS_FreeValue(aerofn_ctx, text);
    return rc;
}

static int aerofn_msg(const char *m)
{
    aerodb_output(m, (int32_t)strlen(m));
    return 1;
}

/* source_code_len is the length of script without its last line when that
 * line is exactly an inline source map, as esbuild appends it (the key,
 * then base64 only: nothing on it can end a string or a comment), else
 * len. */
static size_t source_code_len(const char *script, size_t len)
{
    static const char key[] = "//# sourceMappingURL=data:application/json;base64,";
    size_t end = len;
    if (end > 0 && script[end - 1] == '\n')
        end--;
    size_t start = end;
    while (start > 0 && script[start - 1] != '\n')
        start--;
    if (end - start < sizeof(key) - 1 || memcmp(script + start, key, sizeof(key) - 1) != 0)
        return len;
    for (size_t i = start + sizeof(key) - 1; i < end; i++)
        if (b64val((unsigned char)script[i]) < 0 && script[i] != '=')
            return len;
    return start;
}

/* u32le reads a little-endian uint32. */
static uint32_t u32le(const char *p)
{
    return (uint32_t)(uint8_t)p[0] | (uint32_t)(uint8_t)p[1] << 8 | (uint32_t)(uint8_t)p[2] << 16 |
           (uint32_t)(uint8_t)p[3] << 24;
}

/* aerofn_compile compiles the script (without its source map line) to
 * bytecode and writes the bytecode as the output. */
static int aerofn_compile(char *script, size_t slen)
{
    size_t code_len = source_code_len(script, slen);
    char cut = script[code_len];
    script[code_len] = 0;
    JSValue fn = JS_Eval(aerofn_ctx, script, code_len, "function.js", JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_COMPILE_ONLY);
    script[code_len] = cut;
    if (JS_IsException(fn))
        return aerofn_fail(script, slen);
    size_t n;
    uint8_t *bc = JS_WriteObject(aerofn_ctx, &n, fn, JS_WRITE_OBJ_BYTECODE);
    JS_FreeValue(aerofn_ctx, fn);
    if (!bc)
        return aerofn_fail(script, slen);
    aerodb_output(bc, (int32_t)n);
    js_free(aerofn_ctx, bc);
    return 0;
}

__attribute__((export_name("handler"))) int32_t handler(void)
{
    JS_UpdateStackTop(aerofn_rt);

    /* Math.random differs in every call: seeded from the host's CSPRNG,
     * not from anything the snapshot holds. */
    uint64_t seed = 0;
    while (seed == 0)
        if (getentropy(&seed, sizeof(seed)) != 0)
            aerofn_fatal("aerofn js runtime: the host gave no random bytes");
    aerofn_ctx->random_state = seed;

    int32_t n = aerodb_input_len();
    if (n < 5)
        return aerofn_msg("aerofn js runtime: no script in the input");
    char *in = malloc((size_t)n + 1);
    if (!in)
        return aerofn_msg("aerofn js runtime: out of memory reading the input");
    n = aerodb_input_read(in, n);
    in[n] = 0;
    char mode = in[0];
    uint32_t clen = u32le(in + 1);
    if ((uint64_t)clen > (uint64_t)(n - 5))
        return aerofn_msg("aerofn js runtime: truncated code in the input");
    char *code = in + 5;
    if (mode != 'b') {
        /* JS_Eval wants a NUL after the source: copy the script out. */
        code = malloc((size_t)clen + 1);
        if (!code)
            return aerofn_msg("aerofn js runtime: out of memory reading the input");
        memcpy(code, in + 5, clen);
        code[clen] = 0;
    }
    const char *rest = in + 5 + clen;
    size_t rlen = (size_t)(n - 5) - clen;

    /* script is what describe reads the source map from: the script, or
     * with bytecode the part of it from its source map line on. */
    const char *script = code;
    size_t slen = clen;
    JSValue r;
    switch (mode) {
    case 'c':
        return aerofn_compile(code, clen);
    case 's': {
        /* The parser would scan the bundle's inline source map, its last
         * line, on every call: evaluate the code before it (the lines
         * keep their numbers); describe reads the map from the whole
         * script. */
        size_t code_len = source_code_len(code, clen);
        char cut = code[code_len];
        code[code_len] = 0;
        r = JS_Eval(aerofn_ctx, code, code_len, "function.js", JS_EVAL_TYPE_GLOBAL);
        code[code_len] = cut;
        break;
    }
    case 'b': {
        if (rlen < 4 || (uint64_t)u32le(rest) > (uint64_t)(rlen - 4))
            return aerofn_msg("aerofn js runtime: truncated source map in the input");
        slen = u32le(rest);
        script = rest + 4;
        rest += 4 + slen;
        rlen -= 4 + slen;
        r = JS_ReadObject(aerofn_ctx, (const uint8_t *)code, clen, JS_READ_OBJ_BYTECODE);
        if (!JS_IsException(r))
            r = JS_EvalFunction(aerofn_ctx, r);
        break;
    }
    default:
        return aerofn_msg("aerofn js runtime: unknown input mode");
    }
    if (JS_IsException(r))
        return aerofn_fail(script, slen);
    JS_FreeValue(aerofn_ctx, r);
    const char *event = rest;
    size_t elen = rlen;
    if (elen == 0) {
        event = "null";
        elen = 4;
    }

    JSValue global = JS_GetGlobalObject(aerofn_ctx);
    JSValue exports = JS_GetPropertyStr(aerofn_ctx, global, "__aerofn_exports");
    JS_FreeValue(aerofn_ctx, global);
    JSValue args[2] = {exports, JS_NewStringLen(aerofn_ctx, event, elen)};
    JSValue st = JS_Call(aerofn_ctx, aerofn_run, JS_UNDEFINED, 2, (JSValueConst *)args);
    JS_FreeValue(aerofn_ctx, args[0]);
    JS_FreeValue(aerofn_ctx, args[1]);
    if (JS_IsException(st))
        return aerofn_fail(script, slen);
    /* The event loop: run the promise jobs; while the handler's promise
     * is pending, run the next timer (prelude's tick), and again. st is
     * [state, value]: 1 fulfilled, 2 rejected, 0 pending. */
    int32_t s = 0;
    for (;;) {
        for (;;) {
            JSContext *c;
            int k = JS_ExecutePendingJob(aerofn_rt, &c);
            if (k == 0)
                break;
            if (k < 0)
                return aerofn_fail(script, slen);
        }
        JSValue state = JS_GetPropertyUint32(aerofn_ctx, st, 0);
        JS_ToInt32(aerofn_ctx, &s, state);
        JS_FreeValue(aerofn_ctx, state);
        if (s != 0)
            break;
        JSValue ran = JS_Call(aerofn_ctx, aerofn_tick, JS_UNDEFINED, 0, NULL);
        if (JS_IsException(ran))
            return aerofn_fail(script, slen);
        int more = JS_ToBool(aerofn_ctx, ran);
        JS_FreeValue(aerofn_ctx, ran);
        if (!more)
            break;
    }
    JSValue val = JS_GetPropertyUint32(aerofn_ctx, st, 1);
    if (s == 1)
        return aerofn_out_value(val, 1);
    if (s == 2) {
        JS_Throw(aerofn_ctx, val);
        return aerofn_fail(script, slen);
    }
    return aerofn_msg("the handler's promise never settled: no timer or host call is left that could settle it");
}
