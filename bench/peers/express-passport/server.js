// The seed's stack, written from its description, for side-by-side benchmarks with Signoff:
// Express 5, Passport 0.7 (passport-local), express-session 1.19, argon2 from npm.
// Sessions in MemoryStore (STORE=memory, the default) or PostgreSQL via connect-pg-simple
// (STORE=pg, DATABASE_URL). Same endpoints and bodies as Signoff's HTTP contract.
//
// This is a benchmark peer, not part of Signoff: it does only what the seed does.

'use strict';

const express = require('express');
const session = require('express-session');
const passport = require('passport');
const LocalStrategy = require('passport-local').Strategy;
const argon2 = require('argon2');

const PORT = Number(process.env.PORT || 3100);
const STORE = process.env.STORE || 'memory';
const COOKIE = 'connect.sid';
// The same Argon2id cost as Signoff (OWASP minimum: m = 19 MiB, t = 2, p = 1), so that sign-in
// compares frameworks, not hash settings.
const ARGON2 = { type: argon2.argon2id, memoryCost: 19 * 1024, timeCost: 2, parallelism: 1 };

// Users: in memory with MemoryStore, in PostgreSQL with connect-pg-simple.
function memoryUsers() {
  const byName = new Map();
  const byId = new Map();
  return {
    async create(username, hash) {
      if (byName.has(username)) return null;
      const user = { id: byId.size + 1, username, hash };
      byName.set(username, user);
      byId.set(user.id, user);
      return user;
    },
    async byName(username) { return byName.get(username) || null; },
    async byId(id) { return byId.get(id) || null; },
  };
}

function pgUsers(pool) {
  return {
    async init() {
      await pool.query(`CREATE TABLE IF NOT EXISTS bench_users (
        id SERIAL PRIMARY KEY, username TEXT UNIQUE NOT NULL, hash TEXT NOT NULL)`);
    },
    async create(username, hash) {
      const r = await pool.query(
        'INSERT INTO bench_users (username, hash) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING id, username, hash',
        [username, hash]);
      return r.rows[0] || null;
    },
    async byName(username) {
      const r = await pool.query('SELECT id, username, hash FROM bench_users WHERE username = $1', [username]);
      return r.rows[0] || null;
    },
    async byId(id) {
      const r = await pool.query('SELECT id, username, hash FROM bench_users WHERE id = $1', [id]);
      return r.rows[0] || null;
    },
  };
}

async function main() {
  let users;
  let store;
  if (STORE === 'pg') {
    const { Pool } = require('pg');
    const PgStore = require('connect-pg-simple')(session);
    const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 8 });
    users = pgUsers(pool);
    await users.init();
    store = new PgStore({ pool, createTableIfMissing: true });
  } else {
    users = memoryUsers();
    store = new session.MemoryStore();
  }

  passport.use(new LocalStrategy(async (username, password, done) => {
    try {
      const user = await users.byName(username.trim().toLowerCase());
      if (!user || !(await argon2.verify(user.hash, password))) return done(null, false);
      return done(null, user);
    } catch (error) {
      return done(error);
    }
  }));
  passport.serializeUser((user, done) => done(null, user.id));
  passport.deserializeUser(async (id, done) => {
    try {
      done(null, await users.byId(id));
    } catch (error) {
      done(error);
    }
  });

  const app = express();
  app.disable('x-powered-by');
  app.use(express.urlencoded({ extended: false, limit: '16kb' }));
  app.use(session({
    name: COOKIE,
    secret: process.env.SESSION_SECRET || 'bench-only-secret',
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: 'lax', maxAge: 30 * 60 * 1000 },
    store,
  }));
  app.use(passport.session());

  const publicUser = (user) => ({ id: user.id, username: user.username });

  app.post('/api/register', async (req, res, next) => {
    const username = String(req.body.username || '').trim().toLowerCase();
    const password = String(req.body.password || '');
    if (!username || password.length < 15) {
      return res.status(400).json({ code: 'invalid_input', message: 'Invalid username or password.' });
    }
    try {
      const user = await users.create(username, await argon2.hash(password, ARGON2));
      if (!user) return res.status(409).json({ code: 'username_taken', message: 'That username is taken.' });
      req.login(user, (error) => (error ? next(error) : res.json(publicUser(user))));
    } catch (error) {
      next(error);
    }
  });

  app.post('/api/login', (req, res, next) => {
    passport.authenticate('local', (error, user) => {
      if (error) return next(error);
      if (!user) return res.status(401).json({ code: 'invalid_credentials', message: 'Wrong username or password.' });
      req.login(user, (error2) => (error2 ? next(error2) : res.json(publicUser(user))));
    })(req, res, next);
  });

  app.get('/api/me', (req, res) => {
    res.json(req.user ? publicUser(req.user) : null);
  });

  // The seed's sequence: clear the cookie, log the user out, destroy the server-side session,
  // then answer with no redirect.
  app.post('/api/logout', (req, res, next) => {
    res.clearCookie(COOKIE, { path: '/', httpOnly: true, sameSite: 'lax' });
    req.logout((error) => {
      if (error) return next(error);
      req.session.destroy((error2) => {
        if (error2) return next(error2);
        res.status(200).json(null);
      });
    });
  });

  app.listen(PORT, '127.0.0.1', () => {
    console.log(`express-passport peer (${STORE}) on http://127.0.0.1:${PORT}`);
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
