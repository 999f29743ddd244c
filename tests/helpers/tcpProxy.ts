// A loopback TCP proxy in front of the database that a test can cut and restore, to play an outage.
export interface TcpProxy {
  port: number;
  /** Drops every connection and stops accepting (the database "goes away"). */
  cut(): void;
  /** Accepts again on the same port. */
  restore(): void;
  close(): Promise<void>;
}

export function startTcpProxy(targetHost: string, targetPort: number): TcpProxy {
  let listener: Deno.Listener | undefined;
  const open = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  let port = 0;

  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    try {
      await from.readable.pipeTo(to.writable);
    } catch {
      // a cut closes both ends mid-copy
    }
  };

  const accept = async (server: Deno.Listener) => {
    for await (const client of server) {
      const task = (async () => {
        let upstream: Deno.Conn | undefined;
        try {
          upstream = await Deno.connect({ hostname: targetHost, port: targetPort });
          open.add(client).add(upstream);
          await Promise.all([pipe(client, upstream), pipe(upstream, client)]);
        } catch {
          // upstream refused
        } finally {
          for (const conn of [client, upstream]) {
            if (!conn) continue;
            open.delete(conn);
            try {
              conn.close();
            } catch { /* already closed */ }
          }
        }
      })();
      tasks.add(task);
      task.finally(() => tasks.delete(task));
    }
  };

  let acceptLoop: Promise<void> = Promise.resolve();
  const listen = () => {
    listener = Deno.listen({ hostname: "127.0.0.1", port });
    port = (listener.addr as Deno.NetAddr).port;
    acceptLoop = accept(listener).catch(() => {});
  };
  const stop = () => {
    listener?.close();
    listener = undefined;
    for (const conn of open) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
    open.clear();
  };
  listen();
  return {
    get port() {
      return port;
    },
    cut: stop,
    restore: listen,
    close: async () => {
      stop();
      await acceptLoop;
      await Promise.all([...tasks]);
    },
  };
}
