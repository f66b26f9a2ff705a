// Minimal HS256/384/512 JWT handling, enough to forge tokens the server must refuse.
import { createHmac, randomBytes } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";

const b64url = (buf) => Buffer.from(buf).toString("base64url");
const HASH = { HS256: "sha256", HS384: "sha384", HS512: "sha512" };

export function decode(token) {
  const [header, payload] = token.split(".");
  return {
    header: JSON.parse(Buffer.from(header, "base64url").toString("utf8")),
    payload: JSON.parse(Buffer.from(payload, "base64url").toString("utf8")),
  };
}

export function sign(header, payload, secret) {
  const head = b64url(JSON.stringify(header));
  const body = b64url(JSON.stringify(payload));
  const hash = HASH[header.alg];
  if (!hash) throw new Error(`unsupported alg ${header.alg}`);
  const signature = createHmac(hash, secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${signature}`;
}

/** A token with the real token's header and claims, signed with a random secret. */
export function forge(realToken, overrides = {}) {
  const { header, payload } = decode(realToken);
  const alg = HASH[header.alg] ? header.alg : "HS256";
  return sign({ ...header, alg }, { ...payload, ...overrides }, randomBytes(32));
}

/** The real token's header and signature with different claims (a tampered payload). */
export function tamper(realToken, overrides) {
  const [head, , signature] = realToken.split(".");
  const { payload } = decode(realToken);
  return `${head}.${b64url(JSON.stringify({ ...payload, ...overrides }))}.${signature}`;
}

/** An unsigned token (`alg: none`) with the real token's claims. */
export function unsigned(realToken) {
  const { payload } = decode(realToken);
  return `${b64url(JSON.stringify({ alg: "none", typ: "JWT" }))}.${b64url(JSON.stringify(payload))}.`;
}

function candidateKeys(bytes) {
  const text = bytes.toString("utf8").trim();
  const keys = [bytes, Buffer.from(text, "utf8")];
  if (/^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0) keys.push(Buffer.from(text, "hex"));
  if (/^[A-Za-z0-9+/_-]+=*$/.test(text)) {
    keys.push(Buffer.from(text, "base64"), Buffer.from(text, "base64url"));
  }
  const kv = text.match(/secret\s*[=:]\s*"?([^"\s]+)"?/i);
  if (kv) keys.push(...candidateKeys(Buffer.from(kv[1], "utf8")).slice(1));
  return keys;
}

async function smallFiles(dir, depth = 0) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory() && depth < 2) out.push(...(await smallFiles(full, depth + 1)));
    else if (entry.isFile() && (await stat(full)).size <= 4096) out.push(full);
  }
  return out;
}

/**
 * Looks in the server's data dir for the key that signed `token`: every small file is tried
 * raw, trimmed, hex- and base64-decoded, and a key is accepted only if it reproduces the
 * token's signature exactly. Resolves to the key or undefined.
 */
export async function findSigningKey(dataDir, token) {
  const [head, body, signature] = token.split(".");
  const hash = HASH[decode(token).header.alg];
  if (!hash) return undefined;
  for (const file of await smallFiles(dataDir)) {
    for (const key of candidateKeys(await readFile(file))) {
      if (createHmac(hash, key).update(`${head}.${body}`).digest("base64url") === signature) return key;
    }
  }
  return undefined;
}
