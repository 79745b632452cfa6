// AWS Signature Version 4 with WebCrypto: the Authorization header for a
// request, or a presigned URL, as every AWS SDK computes them.

const enc = new TextEncoder();

function hex(buf) {
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(data) {
  return hex(await crypto.subtle.digest("SHA-256", typeof data === "string" ? enc.encode(data) : data));
}

async function hmac(key, msg) {
  const k = await crypto.subtle.importKey(
    "raw",
    typeof key === "string" ? enc.encode(key) : key,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(msg)));
}

// RFC 3986 percent-encoding, as SigV4's canonical query string wants it.
function uriEncode(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

/** `20150830T123600Z` for a Date. */
export function amzDate(date) {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/** The canonical query string of a URL's parameters. */
function canonicalQuery(u) {
  return [...u.searchParams]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

/** `host` (from `u`) and `headers`, lower-cased: their canonical lines and signed-header list. */
function canonicalHeaders(u, headers, extra = {}) {
  const all = { host: u.host, ...extra };
  for (const [k, v] of Object.entries(headers)) all[k.toLowerCase()] = String(v);
  const names = Object.keys(all).sort();
  return {
    lines: names.map((n) => `${n}:${all[n].trim().replace(/\s+/g, " ")}\n`).join(""),
    signed: names.join(";"),
  };
}

/** The credential scope and the signature of a canonical request made at `stamp`. */
async function signature({ canonical, stamp, credentials, region, service }) {
  const day = stamp.slice(0, 8);
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", stamp, scope, await sha256Hex(canonical)].join("\n");
  let key = await hmac("AWS4" + credentials.secretAccessKey, day);
  key = await hmac(key, region);
  key = await hmac(key, service);
  key = await hmac(key, "aws4_request");
  return { scope, signature: hex(await hmac(key, toSign)) };
}

/**
 * The headers to add to a request so that it is signed: `x-amz-date` and
 * `authorization`. `headers` are the request's other headers (`host` is
 * taken from `url`); `body` a string or bytes.
 */
export async function sign({ method, url, headers = {}, body = "", credentials, region, service, date = new Date() }) {
  const u = new URL(url);
  const stamp = amzDate(date);
  const hs = canonicalHeaders(u, headers, { "x-amz-date": stamp });
  const canonical = [method, u.pathname || "/", canonicalQuery(u), hs.lines, hs.signed, await sha256Hex(body)].join("\n");
  const { scope, signature: sig } = await signature({ canonical, stamp, credentials, region, service });
  return {
    "x-amz-date": stamp,
    authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${hs.signed}, Signature=${sig}`,
  };
}

/** A path whose segments are percent-encoded as S3's SigV4 wants them (`/` kept). */
export function s3Path(bucket, key = "") {
  return "/" + [bucket, ...(key ? key.split("/") : [])].map(uriEncode).join("/");
}

/**
 * `url` presigned: the SigV4 query parameters (`X-Amz-Algorithm`, ...,
 * `X-Amz-Signature`) added, valid for `expires` seconds from `date`, for
 * a request that can send no headers of its own (a download link, an
 * EventSource). `headers` are the other headers signed besides `host`.
 * S3 signs such requests over an unsigned payload (its path must already
 * be encoded, see `s3Path`), other services over the body's hash.
 */
export async function presign({ method = "GET", url, headers = {}, body = "", credentials, region, service = "s3", expires = 300, date = new Date() }) {
  const u = new URL(url);
  const stamp = amzDate(date);
  const hs = canonicalHeaders(u, headers);
  const day = stamp.slice(0, 8);
  u.searchParams.append("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
  u.searchParams.append("X-Amz-Credential", `${credentials.accessKeyId}/${day}/${region}/${service}/aws4_request`);
  u.searchParams.append("X-Amz-Date", stamp);
  u.searchParams.append("X-Amz-Expires", String(expires));
  u.searchParams.append("X-Amz-SignedHeaders", hs.signed);
  const payload = service === "s3" ? "UNSIGNED-PAYLOAD" : await sha256Hex(body);
  const canonical = [method, u.pathname || "/", canonicalQuery(u), hs.lines, hs.signed, payload].join("\n");
  const { signature: sig } = await signature({ canonical, stamp, credentials, region, service });
  u.search = `${canonicalQuery(u)}&X-Amz-Signature=${sig}`;
  return u.href;
}
