// Test harness: starts one riffle server per test file and builds SDK clients
// that talk cleartext HTTP/2 (prior knowledge) to it.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

import { KinesisClient } from "@aws-sdk/client-kinesis";
import { NodeHttp2Handler } from "@smithy/node-http-handler";

// The SDK warns once per process that it will soon need node >= 22; CI runs node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const HERE = dirname(fileURLToPath(import.meta.url));

export const ACCOUNT = "000000000000";
export const REGION = "us-east-1";
export const CREDENTIALS = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};

/** Path of the riffle binary: $RIFFLE_BIN, $CARGO_TARGET_DIR/debug/riffle, ../../target/debug/riffle. */
export function riffleBin() {
  if (process.env.RIFFLE_BIN) return process.env.RIFFLE_BIN;
  if (process.env.CARGO_TARGET_DIR) {
    const p = join(process.env.CARGO_TARGET_DIR, "debug", "riffle");
    if (existsSync(p)) return p;
  }
  return resolve(HERE, "..", "..", "target", "debug", "riffle");
}

async function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/**
 * A running riffle server. `await Riffle.start()` in `before`, `await server.stop()` in `after`.
 * Options: `statusDelayMs` (default 0: streams and consumers become ACTIVE at once) and `args`
 * (more `riffle serve` flags).
 */
export class Riffle {
  static async start({ statusDelayMs = 0, args = [] } = {}) {
    const extraArgs = ["--status-delay-ms", String(statusDelayMs), ...args];
    const bin = riffleBin();
    if (!existsSync(bin)) {
      throw new Error(`riffle binary not found at ${bin}; set RIFFLE_BIN`);
    }
    let lastErr;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const dataDir = mkdtempSync(join(tmpdir(), "riffle-js-"));
      const server = new Riffle(bin, port, dataDir, extraArgs);
      try {
        await server.#waitReady();
        return server;
      } catch (e) {
        lastErr = e;
        await server.stop();
      }
    }
    throw lastErr;
  }

  constructor(bin, port, dataDir, extraArgs) {
    this.port = port;
    this.dataDir = dataDir;
    this.endpoint = `http://127.0.0.1:${port}`;
    this.clients = [];
    this.stderr = "";
    this.proc = spawn(
      bin,
      [
        "serve",
        "--listen",
        `127.0.0.1:${port}`,
        "--data-dir",
        dataDir,
        "--test-clock",
        ...extraArgs,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    this.proc.stderr.setEncoding("utf8");
    this.proc.stderr.on("data", (d) => {
      // keep the tail only, for diagnostics
      this.stderr = (this.stderr + d).slice(-8192);
    });
    this.exited = new Promise((ok) => this.proc.once("exit", (code, sig) => ok({ code, sig })));
  }

  async #waitReady() {
    const deadline = Date.now() + 15000;
    let exited = null;
    this.exited.then((e) => (exited = e));
    while (Date.now() < deadline) {
      if (exited) {
        throw new Error(`riffle exited early (${JSON.stringify(exited)}): ${this.stderr}`);
      }
      try {
        const r = await fetch(`${this.endpoint}/_riffle/health`);
        if (r.ok && (await r.text()).trim() === "ok") return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`riffle did not become healthy: ${this.stderr}`);
  }

  /** A KinesisClient using an explicit NodeHttp2Handler (every call is HTTP/2). */
  client(extra = {}) {
    const c = new KinesisClient({
      endpoint: this.endpoint,
      region: REGION,
      credentials: CREDENTIALS,
      maxAttempts: 1,
      requestHandler: new NodeHttp2Handler({ requestTimeout: 10000, sessionTimeout: 10000 }),
      ...extra,
    });
    this.clients.push(c);
    return c;
  }

  /** A KinesisClient with the SDK's default request handler. */
  defaultClient() {
    const c = new KinesisClient({
      endpoint: this.endpoint,
      region: REGION,
      credentials: CREDENTIALS,
      maxAttempts: 1,
    });
    this.clients.push(c);
    return c;
  }

  /** Move the server's test clock forward. */
  async advanceClock(ms) {
    const r = await fetch(`${this.endpoint}/_riffle/clock`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ advance_ms: ms }),
    });
    if (!r.ok) throw new Error(`clock advance failed: ${r.status} ${await r.text()}`);
  }

  async stop() {
    for (const c of this.clients) {
      try {
        c.destroy();
      } catch {
        // ignore
      }
    }
    this.clients = [];
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill("SIGTERM");
      const t = setTimeout(() => this.proc.kill("SIGKILL"), 3000);
      await this.exited;
      clearTimeout(t);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Runs `fn` and returns the error it throws (fails if it does not throw). */
export async function catchError(fn) {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** The parts of an SDK service exception that matter to a client. */
export function errorShape(e) {
  return {
    name: e.name,
    message: e.message,
    fault: e.$fault,
    httpStatusCode: e.$metadata?.httpStatusCode,
  };
}

/** Big-integer comparison of decimal sequence numbers. */
export function seqLess(a, b) {
  return BigInt(a) < BigInt(b);
}

export const MAX_HASH_KEY = (1n << 128n) - 1n;

/** Uint8Array from a list of bytes or a string. */
export function bytes(x) {
  if (typeof x === "string") return new TextEncoder().encode(x);
  return Uint8Array.from(x);
}

/** All 256 byte values, for byte-exactness checks. */
export function allBytes() {
  return Uint8Array.from({ length: 256 }, (_, i) => i);
}
