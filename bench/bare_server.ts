// The floors the bench holds the server against, in a bare Deno.serve with nothing of ours in it:
// - a waiting config pull: every GET except /healthz is held open until SIGTERM (or 60 s); bench/agents.ts
//   runs this with as many requests as phase d and reads its peak RSS, so the server's cost per waiting pull
//   is printed beside what Deno itself pays;
// - a heartbeat: a POST is answered at once as the heartbeat route answers (its JSON body parsed, a JSON
//   answer with the same four headers), so wrk's rate here is what Deno itself allows on this machine.
//   deno run -A bench/bare_server.ts <port>
const port = Number(Deno.args[0]);
const waiting = new Set<() => void>();
const server = Deno.serve(
  { hostname: "127.0.0.1", port, onListen: () => console.log("listening") },
  async (req) => {
    if (req.method === "POST") {
      const body = JSON.parse(await req.text());
      const response = new Response(JSON.stringify({
        desired_config_hash: body.applied_config_hash ?? null,
        heartbeat_interval_s: 30,
        config_changed: false,
      }));
      response.headers.set("content-type", "application/json");
      response.headers.set("cache-control", "no-store");
      response.headers.set("x-content-type-options", "nosniff");
      response.headers.set("x-request-id", crypto.randomUUID());
      return response;
    }
    if (new URL(req.url).pathname === "/healthz") return new Response("ok");
    return new Promise<Response>((resolve) => {
      const release = () => {
        clearTimeout(timer);
        waiting.delete(release);
        resolve(new Response(null, { status: 304 }));
      };
      const timer = setTimeout(release, 60_000);
      waiting.add(release);
    });
  },
);
Deno.addSignalListener("SIGTERM", () => {
  for (const release of [...waiting]) release();
  void server.shutdown();
});
await server.finished;
