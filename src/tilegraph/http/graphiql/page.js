// Starts GraphiQL on the page it was served from: queries go to that URL, subscriptions to
// the same URL over WebSocket. No inline script, so the page's CSP allows scripts from
// 'self' only. Sign in with the `login` mutation, then put the token in the Headers tab:
// {"Authorization": "Bearer <token>"}.
(function () {
  "use strict";

  const EXAMPLE_QUERY = `# Tilegraph's GraphQL API.
#
# 1. Sign in:
#      mutation { login(input: {email: "…", password: "…"}) { token } }
# 2. Put the token in the Headers tab below:
#      {"Authorization": "Bearer <token>"}
# 3. Ask away, e.g.
#      { me { id email role } }
#
# Run: Ctrl-Enter. Complete: Ctrl-Space.
`;

  // Queries shared by URL: ?q=…&variables=…
  const parameters = {};
  for (const entry of window.location.search.slice(1).split("&")) {
    const eq = entry.indexOf("=");
    if (eq >= 0) {
      parameters[decodeURIComponent(entry.slice(0, eq))] = decodeURIComponent(
        entry.slice(eq + 1),
      );
    }
  }

  function updateURL(data) {
    Object.assign(parameters, data);
    const search = Object.keys(parameters)
      .filter((key) => Boolean(parameters[key]))
      .map((key) => encodeURIComponent(key) + "=" + encodeURIComponent(parameters[key]))
      .join("&");
    history.replaceState(null, null, "?" + search);
  }

  const fetchURL = window.location.href.split("?")[0];
  const socketURL = new URL(fetchURL);
  socketURL.protocol = socketURL.protocol === "http:" ? "ws:" : "wss:";
  socketURL.hash = "";

  const fetcher = GraphiQL.createFetcher({
    url: fetchURL,
    subscriptionUrl: socketURL.toString(),
  });

  function TilegraphGraphiQL() {
    const [query, setQuery] = React.useState(parameters.q || EXAMPLE_QUERY);
    const [variables, setVariables] = React.useState(parameters.variables);
    const [headers, setHeaders] = React.useState(parameters.headers);
    const explorer = React.useMemo(() => GraphiQLPluginExplorer.explorerPlugin(), []);
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      plugins: [explorer],
      query: query,
      variables: variables,
      headers: headers,
      onEditQuery: (value) => {
        setQuery(value);
        updateURL({ q: value });
      },
      onEditVariables: (value) => {
        setVariables(value);
        updateURL({ variables: value });
      },
      onEditHeaders: setHeaders,
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
    });
  }

  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(TilegraphGraphiQL));
})();
