// Added for benchmarking: the provisioning routes of kefu's HTTP API (POST /api/login,
// POST /api/agents, POST /api/visitors), so that one load generator sets up both servers the same
// way. The reference design has no accounts API of its own; these routes only create users and
// hand out opaque tokens. The Socket.IO side never looks at the tokens: like the reference, it
// trusts whatever userId a client sends.

import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import express from "express";
import { isDuplicateKey } from "./db.mjs";

const scryptAsync = promisify(scrypt);
const USERNAME = /^[a-z0-9._-]{3,32}$/;

async function hashPassword(password) {
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, 32);
  return `scrypt$${salt.toString("hex")}$${hash.toString("hex")}`;
}

async function verifyPassword(password, stored) {
  const [scheme, salt, hash] = String(stored ?? "").split("$");
  if (scheme !== "scrypt" || !salt || !hash) return false;
  const expected = Buffer.from(hash, "hex");
  const actual = await scryptAsync(password, Buffer.from(salt, "hex"), expected.length);
  return timingSafeEqual(actual, expected);
}

const fail = (res, status, code, message) => res.status(status).json({ error: { code, message } });
const publicUser = (row) => ({ id: String(row.id), role: row.role, username: row.username });

/**
 * Creates (or, when `adminPassword` is given, resets the password of) the `admin` user. Returns
 * the password when it had to generate one.
 */
export async function ensureAdmin(pool, adminPassword) {
  const [rows] = await pool.query("SELECT id FROM users WHERE username = ?", ["admin"]);
  if (rows.length > 0) {
    if (adminPassword) {
      await pool.execute("UPDATE users SET password_hash = ?, role = ? WHERE id = ?", [
        await hashPassword(adminPassword),
        "admin",
        rows[0].id,
      ]);
    }
    return undefined;
  }
  const password = adminPassword || randomBytes(8).toString("hex");
  await pool.execute("INSERT INTO users (username, role, password_hash) VALUES (?, ?, ?)", [
    "admin",
    "admin",
    await hashPassword(password),
  ]);
  return adminPassword ? undefined : password;
}

/** The provisioning routes, as an express router. */
export function provisioning(pool) {
  const tokens = new Map(); // token → { id, role, username }
  const issue = (user) => {
    const token = randomBytes(24).toString("hex");
    tokens.set(token, user);
    return token;
  };
  const bearer = (req) => {
    const match = /^Bearer (.+)$/i.exec(req.get("authorization") ?? "");
    return match ? tokens.get(match[1]) : undefined;
  };

  const router = express.Router();
  router.use(express.json());

  router.post("/api/login", async (req, res) => {
    const { username, password } = req.body ?? {};
    if (typeof username !== "string" || typeof password !== "string") {
      return fail(res, 400, "invalid_payload", "username and password must be strings");
    }
    const [rows] = await pool.query(
      "SELECT id, role, username, password_hash FROM users WHERE username = ?",
      [username.toLowerCase()],
    );
    const row = rows[0];
    if (!row || row.role === "customer" || !(await verifyPassword(password, row.password_hash))) {
      return fail(res, 401, "unauthorized", "wrong username or password");
    }
    const user = publicUser(row);
    res.json({ token: issue(user), user });
  });

  router.post("/api/agents", async (req, res) => {
    const caller = bearer(req);
    if (!caller) return fail(res, 401, "unauthorized", "a valid token is required");
    if (caller.role !== "admin") return fail(res, 403, "forbidden", "only an admin can create agents");
    const { username, password } = req.body ?? {};
    if (typeof username !== "string" || !USERNAME.test(username.toLowerCase())) {
      return fail(res, 400, "invalid_payload", "username: 3-32 characters of a-z 0-9 . _ -");
    }
    if (typeof password !== "string" || password.length < 8 || password.length > 128) {
      return fail(res, 400, "invalid_payload", "password: 8-128 characters");
    }
    try {
      const name = username.toLowerCase();
      const [result] = await pool.execute(
        "INSERT INTO users (username, role, password_hash) VALUES (?, ?, ?)",
        [name, "agent", await hashPassword(password)],
      );
      res.status(201).json({ user: publicUser({ id: result.insertId, role: "agent", username: name }) });
    } catch (err) {
      if (isDuplicateKey(err)) return fail(res, 409, "conflict", "the username is taken");
      throw err;
    }
  });

  router.post("/api/visitors", async (_req, res) => {
    for (;;) {
      const username = `visitor-${randomBytes(4).toString("hex")}`;
      try {
        const [result] = await pool.execute(
          "INSERT INTO users (username, role, password_hash) VALUES (?, ?, NULL)",
          [username, "customer"],
        );
        const user = publicUser({ id: result.insertId, role: "customer", username });
        return res.status(201).json({ token: issue(user), user });
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
    }
  });

  router.get("/healthz", (_req, res) => res.type("text/plain").send("ok"));

  // Malformed JSON and database failures answer in kefu's error shape.
  router.use((err, _req, res, _next) => {
    if (err?.type === "entity.parse.failed") {
      return fail(res, 400, "invalid_payload", "the body is not valid JSON");
    }
    console.error("provisioning:", err);
    fail(res, 503, "unavailable", "the database could not be reached");
  });
  return router;
}
