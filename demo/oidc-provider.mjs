// A local OpenID Connect provider for the demo and the tests: the npm package `oidc-provider`
// (pinned in package.json) with four seeded users, a login form, and one client — the deployer.
// Real authorization-code flow with PKCE, signed ID tokens, userinfo with a `groups` claim.
//
//   OIDC_PORT=5056 OIDC_REDIRECT_URIS=http://127.0.0.1:3000/auth/callback \
//   OIDC_CLIENT_SECRET=… node demo/oidc-provider.mjs
//
// Every user's password is "demo". Not for anything but a laptop and CI.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT || 5056);
const issuer = `http://127.0.0.1:${port}`;
const redirectUris = (process.env.OIDC_REDIRECT_URIS || 'http://127.0.0.1:3000/auth/callback')
  .split(',').map((u) => u.trim()).filter(Boolean);
const clientSecret = process.env.OIDC_CLIENT_SECRET || 'demo-client-secret';
const PASSWORD = 'demo';

// The seeded users: login name → display name and groups (the deployer maps groups to roles).
export const USERS = {
  admin: { name: 'Ada Admin', groups: ['deployer-admins'] },
  deployer: { name: 'Dev Deployer', groups: ['developers'] },
  release: { name: 'Rita Release', groups: ['release-managers'] },
  viewer: { name: 'Vic Viewer', groups: ['everyone'] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'deployer',
    client_secret: clientSecret,
    redirect_uris: redirectUris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
    groups: ['groups'],
  },
  // The groups asked for by scope are put in the ID token too (userinfo has them as well).
  conformIdTokenClaims: false,
  async findAccount(_ctx, id) {
    const user = USERS[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id, name: user.name, preferred_username: id, email: `${id}@example.com`, groups: user.groups,
        };
      },
    };
  },
  // The deployer is a first-party client: no consent screen, the grant is given at login.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email groups');
    await grant.save();
    return grant;
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: { devInteractions: { enabled: false } },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  ttl: { Session: 8 * 3600, Interaction: 600, Grant: 8 * 3600, AccessToken: 600, AuthorizationCode: 60, IdToken: 600 },
});

const escape = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));

function loginPage(uid, error, login) {
  const users = Object.entries(USERS)
    .map(([id, u]) => `<li><code>${id}</code> — ${escape(u.name)} (${u.groups.join(', ')})</li>`).join('');
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sign in · Demo identity provider</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#1f2328}
label{display:block;margin:.8rem 0 .2rem;font-weight:600}input{width:100%;padding:.5rem;font:inherit;box-sizing:border-box}
button{margin-top:1rem;padding:.55rem 1.2rem;font:inherit;font-weight:600;background:#2f6fde;color:#fff;border:0;border-radius:6px}
.error{color:#b42318;font-weight:600}small{color:#57606a}</style></head>
<body><main><h1>Sign in</h1><p><small>Demo identity provider for the deployer. Password for every user: <code>demo</code>.</small></p>
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${uid}/login" autocomplete="off">
<label for="login">User name</label><input id="login" name="login" value="${escape(login || '')}" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button type="submit">Sign in</button></form>
<p><small>Users:</small></p><ul>${users}</ul></main></body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10_000) throw new Error('form too large');
  }
  return Object.fromEntries(new URLSearchParams(body));
}

const callback = provider.callback();

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  const match = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!match) return callback(req, res);
  try {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'consent') {
      const grant = details.grantId ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      grant.addOIDCScope('openid profile email groups');
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(loginPage(details.uid));
    }
    if (req.method === 'POST' && match[2]) {
      const form = await readForm(req);
      const login = String(form.login || '').trim();
      if (!USERS[login] || form.password !== PASSWORD) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end(loginPage(details.uid, 'Unknown user or wrong password.', login));
      }
      return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    }
    res.writeHead(405).end();
  } catch (err) {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`login failed: ${err.message}`);
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer} (client "deployer", redirect ${redirectUris.join(', ')})`);
});
