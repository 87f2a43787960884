// A real OpenID Provider for Signoff's tests: the npm package oidc-provider (8.x), on loopback
// only, with back-channel logout and RP-initiated logout switched on. Not a mock: discovery,
// JWKS, the authorization code flow with PKCE, ID tokens, logout tokens and end_session are
// oidc-provider's own. What this file adds is what a test needs around it:
//
//   * a login page that takes any username (the subject is the username), labelled for
//     Playwright, and consent granted for every scope the client asks (first-party client);
//   * a signing key generated at start and printed, so that Rust tests can sign hostile tokens
//     with the provider's own key (expired, wrong audience, with a nonce…) and see them refused;
//   * `POST /__harness/clients` (JSON client metadata): registers a client after start, because
//     a test learns the relying party's random port only after the provider is up.
//
// Environment: IDP_PORT (0: any free port), IDP_CLIENTS (a JSON array of client metadata),
// IDP_KEY_FILE (a JSON private JWK to sign with instead of a fresh one; key rotation tests),
// IDP_ISSUER_HOST (the host name in the issuer, default 127.0.0.1; the browser tests use
// `localhost`, so that the provider's cookies are not the app's), IDP_EXIT_WITH_STDIN (default
// 1: exit when standard input closes, so a test that dies takes its provider with it).
// Prints one line of JSON when listening: {"issuer", "port", "key" (the private JWK), "pem"}.
import { createPrivateKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const host = '127.0.0.1';
const requestedPort = Number(process.env.IDP_PORT || 0);

function signingKey() {
  if (process.env.IDP_KEY_FILE) {
    return JSON.parse(readFileSync(process.env.IDP_KEY_FILE, 'utf8'));
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

// The provider's storage, in memory. Clients registered through the harness live here too:
// oidc-provider looks a client up in its adapter when it is not a static one.
const stores = new Map();
class MemoryAdapter {
  constructor(model) {
    this.model = model;
    if (!stores.has(model)) stores.set(model, new Map());
    this.store = stores.get(model);
  }

  async upsert(id, payload, expiresIn) {
    const expires = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
    this.store.set(id, { payload, expires });
  }

  async find(id) {
    const entry = this.store.get(id);
    if (!entry || entry.expires < Date.now()) return undefined;
    return entry.payload;
  }

  async findByUid(uid) {
    for (const { payload, expires } of this.store.values()) {
      if (payload.uid === uid && expires >= Date.now()) return payload;
    }
    return undefined;
  }

  async findByUserCode() {
    return undefined;
  }

  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const [id, { payload }] of this.store) {
      if (payload.grantId === grantId) this.store.delete(id);
    }
  }
}

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>${escape(title)}</title></head><body><main><h1>${escape(title)}</h1>${body}</main></body></html>`;

const key = signingKey();
const clients = JSON.parse(process.env.IDP_CLIENTS || '[]');

function configuration(issuer) {
  return {
    adapter: MemoryAdapter,
    clients,
    jwks: { keys: [key] },
    cookies: { keys: [randomUUID()] },
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name'],
      email: ['email', 'email_verified'],
    },
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            preferred_username: sub,
            name: sub,
            email: `${sub}@idp.test`,
            email_verified: true,
          };
        },
      };
    },
    // A first-party client: whatever it asks for is granted, so the flow has no consent step.
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid');
      await grant.save();
      return grant;
    },
    interactions: {
      url(ctx, interaction) {
        return `/interaction/${interaction.uid}`;
      },
    },
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.body = page('Sign out of the test provider?', `${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.body = page('Signed out of the test provider', '<p>You are signed out.</p>');
        },
      },
    },
    pkce: { required: () => true },
    ttl: { Session: 3600, Interaction: 600, Grant: 3600 },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Provider error', `<pre>${escape(JSON.stringify(out))}</pre>`);
    },
  };
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

const server = http.createServer();
server.listen(requestedPort, host, () => {
  const { port } = server.address();
  const issuer = `http://${process.env.IDP_ISSUER_HOST || host}:${port}`;
  const provider = new Provider(issuer, configuration(issuer));
  const callback = provider.callback();

  server.on('request', async (req, res) => {
    try {
      const url = new URL(req.url, issuer);
      if (req.method === 'POST' && url.pathname === '/__harness/clients') {
        const metadata = JSON.parse(await readBody(req));
        await new MemoryAdapter('Client').upsert(metadata.client_id, metadata);
        return send(res, 201, 'application/json', JSON.stringify({ client_id: metadata.client_id }));
      }
      const login = url.pathname.match(/^\/interaction\/([\w-]+)(\/login)?$/);
      if (login && req.method === 'GET' && !login[2]) {
        const details = await provider.interactionDetails(req, res);
        return send(res, 200, 'text/html; charset=utf-8', page('Sign in to the test provider', `
<form method="post" action="/interaction/${escape(details.uid)}/login">
  <label for="username">Username</label>
  <input id="username" name="username" required autocomplete="username">
  <button type="submit">Continue</button>
</form>`));
      }
      if (login && req.method === 'POST' && login[2]) {
        const form = new URLSearchParams(await readBody(req));
        const username = (form.get('username') || '').trim();
        if (!username) return send(res, 400, 'text/plain', 'username required');
        return await provider.interactionFinished(req, res, { login: { accountId: username } }, {
          mergeWithLastSubmission: false,
        });
      }
      return callback(req, res);
    } catch (error) {
      if (!res.headersSent) send(res, 500, 'text/plain', String(error));
    }
  });
  provider.on('backchannel.error', (ctx, error, client) => {
    process.stderr.write(`back-channel logout to ${client.clientId} failed: ${error.message}\n`);
  });
  const pem = createPrivateKey({ key, format: 'jwk' }).export({ type: 'pkcs8', format: 'pem' });
  process.stdout.write(`${JSON.stringify({ issuer, port, key, pem })}\n`);
});

// Ends with the test that started it: when its stdin closes, or on a signal.
if (process.env.IDP_EXIT_WITH_STDIN !== '0') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
