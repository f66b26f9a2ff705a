// A TCP proxy in front of the database, so a test can make the database unreachable.
import net from "node:net";

export async function startProxy(targetHost, targetPort) {
  const connections = new Set();
  let cut = false;
  const listener = net.createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    connections.add(client);
    connections.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      connections.delete(client);
      connections.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(0, "127.0.0.1", resolve);
  });
  return {
    port: listener.address().port,
    /** Drops every open connection and refuses new ones until restore(). */
    cut() {
      cut = true;
      for (const socket of connections) socket.destroy();
      connections.clear();
    },
    restore() {
      cut = false;
    },
    close() {
      this.cut();
      return new Promise((resolve) => listener.close(resolve));
    },
  };
}
