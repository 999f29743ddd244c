// deploy/nginx.conf as shipped (only its certificate paths, listen ports and upstream rewritten), in front
// of a production-mode replica: it passes `nginx -t`, redirects plain HTTP to HTTPS with 308, and through
// HTTPS on a port other than 443 a login holds (Secure cookie, no plain-HTTP notice) and a console form post
// passes the CSRF origin check (it failed with `Host $host`, which drops the port). Needs nginx, openssl and
// curl (.ci/run installs nginx-light); without nginx the test is reported as ignored. An agent's heartbeat
// and a waiting config pull go through it too.
import assert from "node:assert/strict";
import { createUserWithRole } from "./helpers/auth.ts";
import { testConfig } from "./helpers/configs.ts";
import { poolOcid } from "./helpers/fixtures.ts";
import { createNodeWithToken } from "./helpers/nodes.ts";
import { eventually, startTestServer } from "./helpers/server.ts";

const NGINX = Deno.env.get("NGINX_PATH") ?? "/usr/sbin/nginx";
const hasNginx = await Deno.stat(NGINX).then(() => true, () => false);

async function run(command: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const result = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: result.code, out: decode(result.stdout), err: decode(result.stderr) };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** curl through the proxy (-k: the certificate is self-signed); returns the head and body. */
async function curl(args: string[]): Promise<{ status: number; head: string; body: string }> {
  const { code, out, err } = await run("curl", ["-sk", "-i", "--max-time", "10", ...args]);
  assert.equal(code, 0, `curl ${args.join(" ")}: ${err}`);
  const split = out.indexOf("\r\n\r\n");
  const head = out.slice(0, split);
  return { status: Number(head.split(" ")[1]), head, body: out.slice(split + 4) };
}

Deno.test({
  name: "deploy/nginx.conf: TLS, the redirect, a login, a form post and an agent through it",
  ignore: !hasNginx,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "nginx_proxy_" });
    const server = await startTestServer("nginx_proxy", {
      env: { ENVIRONMENT: "production", SECRET_KEY: "s".repeat(48), TRUST_PROXY: "true" },
    });
    let nginx: Deno.ChildProcess | undefined;
    try {
      const cert = await run("openssl", [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        `${dir}/central.key`,
        "-out",
        `${dir}/central.crt`,
      ]);
      assert.equal(cert.code, 0, cert.err);
      const httpPort = freePort();
      const httpsPort = freePort();
      const shipped = await Deno.readTextFile(new URL("../deploy/nginx.conf", import.meta.url));
      const config = shipped
        .replaceAll("/etc/nginx/tls/", `${dir}/`)
        .replace("listen 80;", `listen 127.0.0.1:${httpPort};`)
        .replace("listen 443 ssl;", `listen 127.0.0.1:${httpsPort} ssl;`)
        .replace("server 127.0.0.1:8000;", `server 127.0.0.1:${server.port};`)
        // Everything nginx writes goes to the temporary directory, so the test also runs without root.
        .replace(
          "http {",
          `http {\n  access_log ${dir}/access.log;\n` +
            ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
              .map((kind) => `  ${kind}_temp_path ${dir}/${kind};\n`).join(""),
        );
      for (const [from, to] of [["listen 80;", httpPort], ["listen 443 ssl;", httpsPort]] as const) {
        assert.ok(shipped.includes(from), `deploy/nginx.conf has "${from}" (rewritten to port ${to} here)`);
      }
      const configPath = `${dir}/nginx.conf`;
      await Deno.writeTextFile(configPath, config);
      const globals = `pid ${dir}/nginx.pid; error_log ${dir}/error.log;`;

      await t.step("nginx -t accepts it", async () => {
        const check = await run(NGINX, ["-t", "-e", `${dir}/error.log`, "-c", configPath, "-g", globals]);
        assert.equal(check.code, 0, check.err);
      });

      nginx = new Deno.Command(NGINX, {
        args: ["-e", `${dir}/error.log`, "-c", configPath, "-g", `daemon off; ${globals}`],
        stdout: "null",
        stderr: "piped",
      }).spawn();
      await eventually(
        "nginx listening",
        async () => (await curl([`https://127.0.0.1:${httpsPort}/healthz`])).status === 200,
      );

      await t.step("/metrics is not served through it (Prometheus scrapes the replicas)", async () => {
        assert.equal((await curl([`https://127.0.0.1:${httpsPort}/metrics`])).status, 404);
        const direct = await fetch(`${server.baseUrl}/metrics`);
        assert.equal(direct.status, 200);
        assert.match(await direct.text(), /autoscaler_central_/);
      });

      await t.step("plain HTTP is answered 308 to the same path over HTTPS", async () => {
        const res = await curl([`http://127.0.0.1:${httpPort}/login?next=%2Fnodes`]);
        assert.equal(res.status, 308);
        assert.match(res.head, /\r\nlocation: https:\/\/127\.0\.0\.1\/login\?next=%2Fnodes/i);
      });

      const user = await createUserWithRole(server.ctx, "admin");
      const origin = `https://127.0.0.1:${httpsPort}`;

      await t.step("over HTTPS the login page shows no plain-HTTP notice", async () => {
        const page = await curl([`${origin}/login`]);
        assert.equal(page.status, 200);
        assert.match(page.body, /<form method="post" action="\/login"/);
        assert.doesNotMatch(page.body, /https-notice/);
      });

      await t.step(
        "a login through it sets a Secure cookie, and a form post on a port other than 443 passes the CSRF check",
        async () => {
          const login = await curl([
            "-H",
            "content-type: application/json",
            "--data",
            JSON.stringify({ username: user.username, password: user.password }),
            `${origin}/api/v1/auth/login`,
          ]);
          assert.equal(login.status, 200, login.body);
          const cookie = /\r\nset-cookie: (acs_session=[^;]+);[^\r]*Secure/i.exec(login.head)?.[1];
          assert.ok(cookie, login.head);
          const csrf = (JSON.parse(login.body) as { csrf_token: string }).csrf_token;
          const post = await curl([
            "-H",
            `cookie: ${cookie}`,
            "-H",
            `origin: ${origin}`,
            "-H",
            "accept: text/html",
            "--data-urlencode",
            `_csrf=${csrf}`,
            "--data-urlencode",
            "name=through-the-proxy",
            "--data-urlencode",
            "expires_in_s=3600",
            `${origin}/admin/enrollment-tokens`,
          ]);
          assert.equal(post.status, 200, post.body.slice(0, 300));
          assert.match(post.body, /value="ace_[A-Za-z0-9_-]+"/);
          const foreign = await curl([
            "-H",
            `cookie: ${cookie}`,
            "-H",
            "origin: https://evil.example",
            "--data-urlencode",
            `_csrf=${csrf}`,
            "--data-urlencode",
            "name=forged",
            `${origin}/admin/enrollment-tokens`,
          ]);
          assert.equal(foreign.status, 403);
        },
      );

      await t.step(
        "an agent through it: heartbeat, and a waiting config pull woken by a change",
        async () => {
          const node = await createNodeWithToken(server.ctx, "behind-proxy");
          const first = await server.setConfig(node.nodeId, testConfig(poolOcid("proxy1")));
          const bearer = ["-H", `authorization: Bearer ${node.token}`];
          const heartbeat = await curl([
            ...bearer,
            "-H",
            "content-type: application/json",
            "--data",
            JSON.stringify({ address: "10.0.0.9" }),
            `${origin}/api/v1/nodes/${node.nodeId}/heartbeat`,
          ]);
          assert.equal(heartbeat.status, 200, heartbeat.body);
          // Waits (the agent runs this version); the change below must reach it through the proxy at once.
          const waiting = curl([
            ...bearer,
            "-H",
            `if-none-match: "${first.hash}"`,
            `${origin}/api/v1/nodes/${node.nodeId}/config?wait=30`,
          ]);
          await new Promise((resolve) => setTimeout(resolve, 300));
          const started = Date.now();
          const second = await server.setConfig(node.nodeId, testConfig(poolOcid("proxy2")));
          const pulled = await waiting;
          assert.equal(pulled.status, 200, pulled.body);
          assert.match(pulled.head, new RegExp(`\r\netag: "${second.hash}"`, "i"));
          assert.ok(Date.now() - started < 5_000, `woken after ${Date.now() - started} ms`);
        },
      );
    } finally {
      if (nginx) {
        nginx.kill("SIGQUIT");
        await nginx.stderr.cancel();
        await nginx.status;
      }
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
