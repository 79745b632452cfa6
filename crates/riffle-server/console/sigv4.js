// AWS Signature Version 4 with WebCrypto: the Authorization header for a
// request, as every AWS SDK computes it.

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

/**
 * The headers to add to a request so that it is signed: `x-amz-date` and
 * `authorization`. `headers` are the request's other headers (`host` is
 * taken from `url`); `body` a string or bytes.
 */
export async function sign({ method, url, headers = {}, body = "", credentials, region, service, date = new Date() }) {
  const u = new URL(url);
  const stamp = amzDate(date);
  const day = stamp.slice(0, 8);
  const all = { host: u.host, "x-amz-date": stamp };
  for (const [k, v] of Object.entries(headers)) all[k.toLowerCase()] = String(v);
  const names = Object.keys(all).sort();
  const canonicalHeaders = names.map((n) => `${n}:${all[n].trim().replace(/\s+/g, " ")}\n`).join("");
  const signedHeaders = names.join(";");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const canonical = [method, u.pathname || "/", canonicalQuery(u), canonicalHeaders, signedHeaders, await sha256Hex(body)].join("\n");
  const signature = await signatureOf(canonical, stamp, scope, credentials, region, service);
  return {
    "x-amz-date": stamp,
    authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}

// The query string as SigV4 canonicalises it: encoded, sorted by name then value.
function canonicalQuery(u) {
  return [...u.searchParams]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

async function signatureOf(canonical, stamp, scope, credentials, region, service) {
  const toSign = ["AWS4-HMAC-SHA256", stamp, scope, await sha256Hex(canonical)].join("\n");
  let key = await hmac("AWS4" + credentials.secretAccessKey, stamp.slice(0, 8));
  key = await hmac(key, region);
  key = await hmac(key, service);
  key = await hmac(key, "aws4_request");
  return hex(await hmac(key, toSign));
}

/** A path whose segments are percent-encoded as S3's SigV4 wants them (`/` kept). */
export function s3Path(bucket, key = "") {
  return "/" + [bucket, ...(key ? key.split("/") : [])].map(uriEncode).join("/");
}

/**
 * A presigned GET URL (SigV4 query authentication, the form S3 SDKs
 * presign): `url`'s path must already be encoded (see `s3Path`); valid for
 * `expires` seconds from `date`.
 */
export async function presign({ url, credentials, region, service = "s3", expires = 900, date = new Date() }) {
  const u = new URL(url);
  const stamp = amzDate(date);
  const scope = `${stamp.slice(0, 8)}/${region}/${service}/aws4_request`;
  u.searchParams.set("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
  u.searchParams.set("X-Amz-Credential", `${credentials.accessKeyId}/${scope}`);
  u.searchParams.set("X-Amz-Date", stamp);
  u.searchParams.set("X-Amz-Expires", String(expires));
  u.searchParams.set("X-Amz-SignedHeaders", "host");
  const canonical = ["GET", u.pathname, canonicalQuery(u), `host:${u.host}\n`, "host", "UNSIGNED-PAYLOAD"].join("\n");
  const signature = await signatureOf(canonical, stamp, scope, credentials, region, service);
  u.search = `${canonicalQuery(u)}&X-Amz-Signature=${signature}`;
  return u.href;
}
