#!/usr/bin/env node
// A real OpenID Connect provider (panva's oidc-provider) on loopback, for
// Hark's single sign-on tests. See README.md next to this file.
//
//   node tools/oidc/provider.mjs --port 0 --redirect-uri <uri>[,<uri>...]
//     [--client-id hark] [--client-secret hark-secret] [--id-token-ttl 3600]
//     [--second-client other] [--second-client-secret other-secret]
//     [--ignore-stdin]
//
// Prints exactly one line on stdout once listening:
//   {"issuer":"http://127.0.0.1:12345"}
// Everything else goes to stderr. Exits on SIGTERM/SIGINT and when stdin
// reaches end of file (the test that started it died or dropped the pipe),
// unless --ignore-stdin is given.

import { generateKeyPair, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs, promisify } from 'node:util';

// oidc-provider prints its notices with console.info, which is stdout; the
// only thing on stdout must be the issuer line.
for (const method of ['log', 'info', 'debug']) {
  console[method] = (...args) => console.error(...args);
}

const log = (msg) => process.stderr.write(`oidc-provider.mjs: ${msg}\n`);

function usage(msg) {
  if (msg) log(msg);
  process.stderr.write(
    'usage: node tools/oidc/provider.mjs --port 0 --redirect-uri <uri>[,<uri>...]\n'
      + '         [--client-id hark] [--client-secret hark-secret] [--id-token-ttl 3600]\n'
      + '         [--second-client <id>] [--second-client-secret <id>-secret] [--ignore-stdin]\n',
  );
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      'redirect-uri': { type: 'string', multiple: true },
      'client-id': { type: 'string', default: 'hark' },
      'client-secret': { type: 'string', default: 'hark-secret' },
      'id-token-ttl': { type: 'string', default: '3600' },
      'second-client': { type: 'string' },
      'second-client-secret': { type: 'string' },
      'ignore-stdin': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }));
} catch (err) {
  usage(err.message);
}
if (values.help) usage();

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`bad --port ${values.port}`);
const idTokenTtl = Number(values['id-token-ttl']);
if (!Number.isInteger(idTokenTtl) || idTokenTtl <= 0) usage(`bad --id-token-ttl ${values['id-token-ttl']}`);
const redirectUris = (values['redirect-uri'] ?? [])
  .flatMap((v) => v.split(','))
  .map((v) => v.trim())
  .filter(Boolean);
if (redirectUris.length === 0) usage('--redirect-uri is required');
for (const uri of redirectUris) {
  if (!URL.canParse(uri)) usage(`bad --redirect-uri ${uri}`);
}

// Exit when the parent goes away: stdin is a pipe from the test, and the
// kernel closes it when the test process dies however it dies.
if (!values['ignore-stdin']) {
  process.stdin.on('end', () => { log('stdin closed, exiting'); process.exit(0); });
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => { log(`${signal}, exiting`); process.exit(0); });
}

// A fresh RS256 signing key per run (the RP fetches it from jwks_uri),
// generated on the thread pool while oidc-provider loads: each takes a few
// hundred milliseconds on a small machine.
const keyPair = promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
const { default: Provider } = await import('oidc-provider');
const { privateKey } = await keyPair;
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: randomBytes(8).toString('hex'),
  use: 'sig',
  alg: 'RS256',
};

// Listen first so that port 0 resolves to the real port that the issuer
// URL must carry; requests are handed to the provider once it exists.
let handler = (_req, res) => { res.statusCode = 503; res.end(); };
const server = createServer((req, res) => handler(req, res));
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

function clientMetadata(clientId, clientSecret) {
  return {
    client_id: clientId,
    client_secret: clientSecret,
    // "web" is the default; it allows http:// redirect URIs for the
    // authorization-code flow (only the implicit flow insists on https and
    // forbids localhost), matched exactly, port included.
    application_type: 'web',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: redirectUris,
    id_token_signed_response_alg: 'RS256',
  };
}

const clients = [clientMetadata(values['client-id'], values['client-secret'])];
if (values['second-client']) {
  const id = values['second-client'];
  if (id === values['client-id']) usage('--second-client must differ from --client-id');
  clients.push(clientMetadata(id, values['second-client-secret'] ?? `${id}-secret`));
}

const scopes = ['openid', 'profile', 'email'];

const configuration = {
  clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes,
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  // Put the scope-requested claims (name, preferred_username, email...) in
  // the ID token itself, not only in the userinfo response.
  conformIdTokenClaims: false,
  // Every login name typed at the dev login form is an account.
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          preferred_username: sub,
          name: sub.charAt(0).toUpperCase() + sub.slice(1),
          email: `${sub}@example.test`,
          email_verified: true,
        };
      },
    };
  },
  // No consent screen: the first authorization of a known client creates a
  // grant for every scope and claim this provider has, so the only
  // interaction left is the login form.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const existing = await ctx.oidc.provider.Grant.find(grantId);
      if (existing) return existing;
    }
    if (!ctx.oidc.session.accountId) return undefined;
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(scopes.join(' '));
    grant.addOIDCClaims(['sub', 'name', 'preferred_username', 'email', 'email_verified']);
    await grant.save();
    return grant;
  },
  // PKCE (S256, the only method oidc-provider supports) for every client,
  // confidential ones included.
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
  },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    IdToken: idTokenTtl,
    Interaction: 3600,
    Session: 24 * 3600,
    Grant: 24 * 3600,
  },
};

const provider = new Provider(issuer, configuration);

// One line per request, on stderr.
provider.use(async (ctx, next) => {
  await next();
  log(`${ctx.method} ${ctx.path} -> ${ctx.status}`);
});
for (const event of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error',
  'jwks.error', 'discovery.error', 'end_session.error']) {
  provider.on(event, (_ctx, err) => {
    log(`${event}: ${err.name}: ${err.message}${err.error_description ? ` (${err.error_description})` : ''}`);
  });
}

handler = provider.callback();
log(`clients ${clients.map((c) => c.client_id).join(', ')}; redirect_uris ${redirectUris.join(', ')}`);
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
