// Talks to the API this page was served from: queries and mutations over HTTP POST, and
// subscriptions over one WebSocket speaking graphql-transport-ws (connection_init with the
// token, subscribe/next/error/complete, ping/pong).

const HTTP_URL = new URL("graphql", window.location.href);
HTTP_URL.hash = "";
const SOCKET_URL = new URL(HTTP_URL);
SOCKET_URL.protocol = HTTP_URL.protocol === "https:" ? "wss:" : "ws:";

/** A GraphQL error, with its extensions.code (UNAUTHENTICATED, BAD_USER_INPUT, …). */
export class GraphQLError extends Error {
  constructor(message, code, extensions = {}) {
    super(message);
    this.code = code;
    this.extensions = extensions;
  }
}

function firstError(errors) {
  const error = errors[0] || {};
  const extensions = error.extensions || {};
  return new GraphQLError(error.message || "The request failed", extensions.code, extensions);
}

/** POSTs one operation; returns its data, or throws the first GraphQLError. */
export async function request(query, variables = {}, token = null) {
  const headers = { "content-type": "application/json", accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(HTTP_URL, {
      method: "POST",
      headers,
      body: JSON.stringify({ query, variables }),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (cause) {
    throw new GraphQLError("The server cannot be reached", "NETWORK_ERROR");
  }
  let body;
  try {
    body = await response.json();
  } catch (cause) {
    throw new GraphQLError(`The server answered ${response.status}`, "NETWORK_ERROR");
  }
  if (body.errors && body.errors.length) throw firstError(body.errors);
  return body.data;
}

/**
 * One graphql-transport-ws connection for a signed-in user, opened on the first
 * subscription and shared by all of them. If it closes, every running subscription gets
 * an error; the next subscription opens a new connection.
 */
export class SubscriptionClient {
  constructor(token, { onUnauthenticated = () => {} } = {}) {
    this.token = token;
    this.onUnauthenticated = onUnauthenticated;
    this.socket = null;
    this.ready = null;
    this.nextId = 1;
    this.sinks = new Map();
  }

  /**
   * Starts a subscription. `sink` has next(data), error(GraphQLError) and complete();
   * exactly one of error/complete ends it. Returns a function that stops it.
   */
  subscribe(query, variables, sink) {
    const id = String(this.nextId++);
    this.sinks.set(id, sink);
    this.connect().then(
      (socket) => {
        if (this.sinks.has(id)) {
          socket.send(JSON.stringify({ id, type: "subscribe", payload: { query, variables } }));
        }
      },
      (error) => this.end(id, "error", error),
    );
    return () => {
      if (this.sinks.delete(id) && this.socket && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(JSON.stringify({ id, type: "complete" }));
      }
    };
  }

  end(id, how, value) {
    const sink = this.sinks.get(id);
    if (!sink) return;
    this.sinks.delete(id);
    if (how === "error") sink.error(value);
    else sink.complete();
  }

  connect() {
    if (this.ready) return this.ready;
    this.ready = new Promise((resolve, reject) => {
      const socket = new WebSocket(SOCKET_URL, "graphql-transport-ws");
      this.socket = socket;
      let acknowledged = false;
      socket.addEventListener("open", () => {
        socket.send(
          JSON.stringify({
            type: "connection_init",
            payload: { authorization: `Bearer ${this.token}` },
          }),
        );
      });
      socket.addEventListener("message", (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch (cause) {
          return;
        }
        this.receive(message, () => {
          acknowledged = true;
          resolve(socket);
        });
      });
      socket.addEventListener("close", (event) => {
        if (this.socket === socket) {
          this.socket = null;
          this.ready = null;
        }
        const unauthenticated = event.code === 4401 || event.code === 4403;
        const error = new GraphQLError(
          unauthenticated
            ? "Your session has ended; sign in again"
            : `The live connection closed (${event.code}${event.reason ? ": " + event.reason : ""})`,
          unauthenticated ? "UNAUTHENTICATED" : "NETWORK_ERROR",
        );
        if (!acknowledged) reject(error);
        for (const id of [...this.sinks.keys()]) this.end(id, "error", error);
        if (unauthenticated) this.onUnauthenticated();
      });
    });
    return this.ready;
  }

  receive(message, acknowledge) {
    switch (message.type) {
      case "connection_ack":
        acknowledge();
        break;
      case "ping":
        this.socket.send(JSON.stringify({ type: "pong" }));
        break;
      case "next": {
        const sink = this.sinks.get(message.id);
        if (!sink) break;
        const payload = message.payload || {};
        if (payload.errors && payload.errors.length) {
          this.end(message.id, "error", firstError(payload.errors));
        } else {
          sink.next(payload.data);
        }
        break;
      }
      case "error":
        this.end(message.id, "error", firstError(message.payload || []));
        break;
      case "complete":
        this.end(message.id, "complete");
        break;
      default:
        break;
    }
  }

  close() {
    const error = new GraphQLError("Signed out", "CANCELLED");
    for (const id of [...this.sinks.keys()]) this.end(id, "error", error);
    if (this.socket) this.socket.close(1000, "signed out");
    this.socket = null;
    this.ready = null;
  }
}
