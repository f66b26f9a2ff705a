// The database behind the reference server: the article's mysql2 connection pool, or SQLite
// behind the same two calls (`query` and `execute`, both resolving to `[rows or result]`), so
// server.mjs runs the article's SQL unchanged on either.

import { unlinkSync } from "node:fs";
import Database from "better-sqlite3";
import mysql from "mysql2/promise";

// The article shows three columns of `users` (id, role, username) and, through its INSERT and its
// unread query, the columns of `messages` (sender_id, receiver_id, content, a time, id, read_at).
// `password_hash` is added for the benchmark's provisioning routes. The one index is the one the
// article's unread-count query needs, so that `all_member` does not scan every message.
const MYSQL_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS users (
     id INT AUTO_INCREMENT PRIMARY KEY,
     username VARCHAR(64) NOT NULL UNIQUE,
     role VARCHAR(16) NOT NULL,
     password_hash VARCHAR(255) NULL
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  `CREATE TABLE IF NOT EXISTS messages (
     id BIGINT AUTO_INCREMENT PRIMARY KEY,
     sender_id INT NOT NULL,
     receiver_id INT NOT NULL,
     content TEXT NOT NULL,
     created_at DATETIME(3) NOT NULL,
     read_at DATETIME(3) NULL,
     INDEX messages_receiver_sender (receiver_id, sender_id)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
];

const SQLITE_SCHEMA = `
  CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT
  );
  CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    sender_id INTEGER NOT NULL,
    receiver_id INTEGER NOT NULL,
    content TEXT NOT NULL,
    created_at TEXT NOT NULL,
    read_at TEXT
  );
  CREATE INDEX IF NOT EXISTS messages_receiver_sender ON messages (receiver_id, sender_id);
`;

/** Whether an error is a unique-key violation (a username that is taken). */
export function isDuplicateKey(err) {
  return err?.code === "ER_DUP_ENTRY" || err?.code === "SQLITE_CONSTRAINT_UNIQUE";
}

/** The article's `mysql2/promise` pool; creates the database and the tables if missing. */
export async function openMysql(url) {
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
  if (!/^[A-Za-z0-9_$]+$/.test(database)) {
    throw new Error(`--mysql-url needs a database name of letters, digits and _: ${url}`);
  }
  const server = new URL(url);
  server.pathname = "/";
  const admin = await mysql.createConnection(server.toString());
  try {
    await admin.query(`CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4`);
  } finally {
    await admin.end();
  }
  const pool = mysql.createPool(url);
  for (const statement of MYSQL_SCHEMA) {
    await pool.query(statement);
  }
  return {
    kind: "mysql",
    query: (sql, params) => pool.query(sql, params),
    execute: (sql, params) => pool.execute(sql, params),
    close: () => pool.end(),
  };
}

/**
 * SQLite (WAL, synchronous=FULL: every message is on disk before its INSERT resolves, the same
 * durability kefu gives) behind the pool's interface. Like `pool.query`, an array parameter
 * expands to a list, for the article's `WHERE u.id IN (?)`.
 */
export function openSqlite(path, { removeOnClose = false } = {}) {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("busy_timeout = 5000");
  db.exec(SQLITE_SCHEMA);

  const statements = new Map();
  const run = (sql, params = []) => {
    let text = sql;
    let values = params;
    if (params.some(Array.isArray)) {
      const parts = sql.split("?");
      text = parts[0];
      values = [];
      params.forEach((param, i) => {
        if (Array.isArray(param)) {
          text += param.length ? param.map(() => "?").join(", ") : "NULL";
          values.push(...param);
        } else {
          text += "?";
          values.push(param);
        }
        text += parts[i + 1] ?? "";
      });
    }
    let statement = statements.get(text);
    if (!statement) {
      statement = db.prepare(text);
      statements.set(text, statement);
    }
    const bound = values.map(toSqlite);
    if (statement.reader) {
      return [statement.all(...bound)];
    }
    const info = statement.run(...bound);
    return [{ insertId: Number(info.lastInsertRowid), affectedRows: info.changes }];
  };
  // The pool's calls are asynchronous; better-sqlite3's are not. Wrapping them in promises keeps
  // the article's `await pool.execute(...)` and its error paths as they are.
  const call = async (sql, params) => run(sql, params);
  return {
    kind: "sqlite",
    query: call,
    execute: call,
    close: async () => {
      db.close();
      if (removeOnClose) {
        for (const suffix of ["", "-wal", "-shm"]) {
          try {
            unlinkSync(path + suffix);
          } catch {
            // already gone
          }
        }
      }
    },
  };
}

function toSqlite(value) {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value === undefined) {
    throw new TypeError("Bind parameters must not contain undefined");
  }
  return value;
}
