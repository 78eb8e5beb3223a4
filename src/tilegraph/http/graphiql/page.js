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

  // Nothing goes into the page's URL (a login mutation would carry a password into the
  // browser's history), and what GraphiQL keeps (tabs, variables, the Headers tab with its
  // token) lives in this tab's sessionStorage only: gone when the tab closes.
  const fetchURL = window.location.origin + window.location.pathname;
  const socketURL = new URL(fetchURL);
  socketURL.protocol = socketURL.protocol === "http:" ? "ws:" : "wss:";
  socketURL.hash = "";

  const fetcher = GraphiQL.createFetcher({
    url: fetchURL,
    subscriptionUrl: socketURL.toString(),
  });

  function TilegraphGraphiQL() {
    const explorer = React.useMemo(() => GraphiQLPluginExplorer.explorerPlugin(), []);
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      plugins: [explorer],
      defaultQuery: EXAMPLE_QUERY,
      storage: window.sessionStorage,
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
    });
  }

  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(TilegraphGraphiQL));
})();
