// The floor of phase d: a bare Deno.serve that holds every request open until SIGTERM (or 60 s), as a
// waiting config pull is held. bench/agents.ts runs it as a subprocess with the same number of pulls and
// reads its peak RSS, so the server's cost per waiting pull is printed beside what Deno itself pays.
//   deno run -A bench/bare_waiters.ts <port>
const port = Number(Deno.args[0]);
const waiting = new Set<() => void>();
const server = Deno.serve(
  { hostname: "127.0.0.1", port, onListen: () => console.log("listening") },
  (req) => {
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
