// The dashboard viewer: sign in, pick a dashboard, see its cards run live on its layout
// grid, filter them, and ask the chatbot about them. A viewer, not an editor: it only
// reads dashboards and runs them. The token lives in sessionStorage (this tab only),
// never in the URL; the URL holds only which dashboard is open (#/dashboards/<id>).

import { GraphQLError, SubscriptionClient, request } from "./graphql.js";
import { h, replaceChildren } from "./dom.js";
import { cardFrame, frameDocument } from "./frames.js";

const TOKEN_KEY = "tilegraph.token";
const root = document.getElementById("app");
const account = document.getElementById("account");

const ME = "query { me { id name email } }";
const LOGIN = `mutation($input: LoginInput!) {
  login(input: $input) { token user { id name email } } }`;
const LOGOUT = "mutation { logout { ok } }";
const DASHBOARDS = `query($after: String) {
  dashboards(first: 50, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { id name description cardCount myPermission updatedAt owner { name email } } } }`;
const DASHBOARD = `query($id: ID!) {
  dashboard(id: $id) {
    id name description myPermission
    layout { columns rowHeight items { x y w h card { id name description type } } }
    filters { id type column label multiSelect options }
    defaultFilterView { id }
    filterViews { id name filterState isShared isDefault } } }`;
const FILTER_VALUES = `query($id: ID!) {
  dashboard(id: $id) { filters { id values(limit: 200) } } }`;
const EXECUTE = `mutation($input: ExecuteDashboardInput!) {
  executeDashboard(input: $input) { executions { id status card { id } } } }`;
const CANCEL = `mutation($input: CancelExecutionInput!) { cancelExecution(input: $input) { ok } }`;
const FOLLOW = `subscription($id: ID!) {
  cardExecution(id: $id) {
    id status progress error { code message line }
    result { html cached executionTimeMs ignoredFilters } } }`;
const CHAT = `subscription($dashboardId: ID!, $message: String!, $history: [ChatMessageInput!]) {
  dashboardChat(dashboardId: $dashboardId, message: $message, history: $history) {
    type text error } }`;

// Filter edits in a row (arrow keys through a list, typing a date) run the cards once.
const FILTER_SETTLE_MS = 300;
const ENDED = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);

let session = null; // { token, user, live }
let closeView = () => {};
let shown = 0; // counts views shown, so a view that finished loading late stays away

// ---------------------------------------------------------------- session

function signedIn(token, user) {
  sessionStorage.setItem(TOKEN_KEY, token);
  session = {
    token,
    user,
    live: new SubscriptionClient(token, { onUnauthenticated: () => signOut(true) }),
  };
  showAccount();
}

async function signOut(expired = false) {
  if (!session) return;
  closeView(); // while the token still works: its unfinished runs are cancelled
  const { token, live } = session;
  session = null;
  sessionStorage.removeItem(TOKEN_KEY);
  live.close();
  if (!expired) request(LOGOUT, {}, token).catch(() => {});
  showAccount();
  showLogin(expired ? "Your session has ended; sign in again." : "");
}

/** Runs an operation as the signed-in user; a lost session sends them to sign in. */
async function api(query, variables) {
  try {
    return await request(query, variables, session && session.token);
  } catch (error) {
    if (error instanceof GraphQLError && error.code === "UNAUTHENTICATED") signOut(true);
    throw error;
  }
}

function showAccount() {
  if (!session) {
    replaceChildren(account);
    return;
  }
  replaceChildren(
    account,
    h("span", { class: "who" }, "Signed in as ", h("strong", {}, session.user.name || session.user.email)),
    h("button", { type: "button", class: "secondary", onclick: () => signOut() }, "Sign out"),
  );
}

function describe(error) {
  return error instanceof GraphQLError && error.code
    ? `${error.message} (${error.code})`
    : String(error && error.message ? error.message : error);
}

// ---------------------------------------------------------------- views

function show(view) {
  closeView();
  closeView = () => {};
  shown++;
  replaceChildren(root, view);
  const heading = view.querySelector("h1");
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

function showLogin(message = "") {
  const email = h("input", {
    id: "login-email", type: "email", name: "email", autocomplete: "username",
    required: true, "data-testid": "login-email",
  });
  const password = h("input", {
    id: "login-password", type: "password", name: "password",
    autocomplete: "current-password", required: true, "data-testid": "login-password",
  });
  const status = h("p", { class: "error", role: "alert" }, message);
  const submit = h("button", { type: "submit", "data-testid": "login-submit" }, "Sign in");
  const form = h(
    "form",
    { class: "login panel", method: "post", novalidate: false },
    h("h1", {}, "Sign in to Tilegraph"),
    h("label", { for: "login-email" }, "Email"),
    email,
    h("label", { for: "login-password" }, "Password"),
    password,
    status,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    status.textContent = "";
    try {
      const data = await request(LOGIN, {
        input: { email: email.value.trim(), password: password.value },
      });
      password.value = "";
      signedIn(data.login.token, data.login.user);
      route();
    } catch (error) {
      status.textContent = describe(error);
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  show(h("main", { class: "narrow" }, form));
  email.focus();
}

async function showDashboards() {
  const list = h("ul", { class: "dashboards" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Show more");
  const status = h("p", { role: "status" }, "Loading…");
  show(h("main", {}, h("h1", {}, "Dashboards"), status, list, more));
  let after = null;
  async function load() {
    try {
      const { dashboards } = await api(DASHBOARDS, { after });
      for (const board of dashboards.nodes) {
        list.append(
          h(
            "li",
            { class: "panel" },
            h("a", { href: `#/dashboards/${encodeURIComponent(board.id)}`, "data-testid": "dashboard-link" }, board.name),
            board.description ? h("p", {}, board.description) : null,
            h(
              "p",
              { class: "meta" },
              `${board.cardCount} card${board.cardCount === 1 ? "" : "s"} · by ${board.owner.name || board.owner.email} · you: ${board.myPermission.toLowerCase()}`,
            ),
          ),
        );
      }
      status.textContent = dashboards.totalCount
        ? `${dashboards.totalCount} dashboard${dashboards.totalCount === 1 ? "" : "s"} you can see`
        : "No dashboard is shared with you yet.";
      after = dashboards.pageInfo.endCursor;
      more.hidden = !dashboards.pageInfo.hasNextPage;
    } catch (error) {
      status.textContent = `Could not list dashboards: ${describe(error)}`;
    }
  }
  more.addEventListener("click", load);
  await load();
}

// ---------------------------------------------------------------- one dashboard

/** The ColumnFilterInputs for the current state of the controls. */
function columnFilters(filters, state) {
  const result = [];
  for (const filter of filters) {
    const value = state[filter.id];
    if (value === undefined || value === null) continue;
    if (filter.type === "CATEGORY") {
      const values = (Array.isArray(value) ? value : [value]).filter((v) => v !== "");
      if (values.length) result.push({ column: filter.column, values });
    } else {
      const start = value.start || null;
      const end = value.end || null;
      if (start || end) result.push({ column: filter.column, start, end });
    }
  }
  return result;
}

function filterControl(filter, onChange) {
  const id = `filter-${filter.id}`;
  if (filter.type === "CATEGORY") {
    const select = h("select", { id, multiple: filter.multiSelect, "data-testid": id });
    const fill = (values) => {
      const chosen = new Set([...select.selectedOptions].map((o) => o.value));
      replaceChildren(
        select,
        filter.multiSelect ? null : h("option", { value: "" }, "All"),
        values.map((v) => h("option", { value: v, selected: chosen.has(v) }, v)),
      );
    };
    fill(filter.options || []);
    select.addEventListener("change", () => {
      const values = [...select.selectedOptions].map((o) => o.value).filter((v) => v !== "");
      onChange(filter.multiSelect ? values : values[0]);
    });
    return {
      element: h("div", { class: "field" }, h("label", { for: id }, filter.label), select),
      setValues: (values) => values.length && fill(values),
      set(value) {
        const wanted = new Set(Array.isArray(value) ? value : value ? [value] : []);
        for (const option of select.options) option.selected = wanted.has(option.value);
        if (!filter.multiSelect && !wanted.size) select.value = "";
      },
    };
  }
  const type = filter.type === "DATE_RANGE" ? "date" : "number";
  const start = h("input", { id: `${id}-start`, type, step: type === "number" ? "any" : null });
  const end = h("input", { id: `${id}-end`, type, step: type === "number" ? "any" : null });
  const changed = () => onChange({ start: start.value, end: end.value });
  start.addEventListener("change", changed);
  end.addEventListener("change", changed);
  return {
    element: h(
      "fieldset",
      { class: "field range", "data-testid": id },
      h("legend", {}, filter.label),
      h("label", { for: start.id }, "From"),
      start,
      h("label", { for: end.id }, "To"),
      end,
    ),
    setValues: () => {},
    set(value) {
      start.value = (value && value.start) || "";
      end.value = (value && value.end) || "";
    },
  };
}

/** One card on the grid: its frame, its run's status and progress, its error. */
function cardView(item) {
  const title = h("h2", {}, item.card.name);
  const status = h("span", { class: "status", role: "status" }, "Not run yet");
  const progress = h("progress", { max: 1, hidden: true, "aria-label": `${item.card.name} progress` });
  const error = h("div", { class: "card-error", role: "alert", hidden: true });
  const frame = cardFrame(item.card.name);
  const article = h(
    "article",
    {
      class: "card panel",
      dataset: { cardId: item.card.id, status: "idle" },
      style: {
        "--x": String(item.x + 1),
        "--y": String(item.y + 1),
        "--w": String(item.w),
        "--h": String(item.h),
      },
    },
    h("header", {}, title, status),
    progress,
    error,
    h("div", { class: "frame" }, frame),
  );
  frame.addEventListener("load", () => {
    if (frame.dataset.execution) article.dataset.loaded = frame.dataset.execution;
  });

  function update(execution) {
    const state = execution.status.toLowerCase();
    article.dataset.status = state;
    article.dataset.execution = execution.id;
    const running = state === "queued" || state === "running";
    article.classList.toggle("stale", running);
    progress.hidden = !running;
    if (running && typeof execution.progress === "number") progress.value = execution.progress;
    else if (running) progress.removeAttribute("value");
    const result = execution.result;
    status.textContent =
      state === "succeeded" && result
        ? `Done in ${Math.round(result.executionTimeMs)} ms${result.cached ? " (cached)" : ""}`
        : state === "running" && typeof execution.progress === "number"
          ? `Running… ${Math.round(execution.progress * 100)}%`
          : { queued: "Queued…", running: "Running…", failed: "Failed", cancelled: "Cancelled" }[state] || state;
    if (execution.error) {
      const where = execution.error.line ? `Line ${execution.error.line}: ` : "";
      replaceChildren(
        error,
        h("strong", {}, execution.error.code.replaceAll("_", " ").toLowerCase()),
        " — ",
        where,
        execution.error.message,
      );
      error.hidden = false;
    } else {
      error.hidden = true;
    }
    if (state === "succeeded" && result) {
      const ignored = result.ignoredFilters || [];
      if (ignored.length) status.textContent += ` · filters not applicable: ${ignored.join(", ")}`;
      frame.dataset.execution = execution.id;
      frame.srcdoc = frameDocument(result.html);
    }
  }

  function fail(message) {
    article.dataset.status = "failed";
    article.classList.remove("stale");
    progress.hidden = true;
    status.textContent = "Failed";
    replaceChildren(error, message);
    error.hidden = false;
  }

  return { element: article, update, fail };
}

function chatPanel(dashboardId) {
  const history = [];
  const log = h("ol", { class: "chat-log", "aria-live": "polite" });
  const input = h("textarea", {
    id: "chat-input", rows: 2, required: true, "data-testid": "chat-input",
    placeholder: "e.g. Which region sells the most?",
  });
  const ask = h("button", { type: "submit" }, "Ask");
  const stopButton = h("button", { type: "button", class: "secondary", hidden: true }, "Stop");
  let stop = null;

  function finish() {
    stop = null;
    ask.disabled = false;
    stopButton.hidden = true;
    log.setAttribute("aria-busy", "false");
  }

  stopButton.addEventListener("click", () => {
    if (stop) stop();
    finish();
  });

  const form = h(
    "form",
    { class: "chat-form", method: "post" },
    h("label", { for: "chat-input" }, "Your question"),
    input,
    h("div", { class: "buttons" }, ask, stopButton),
  );
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const message = input.value.trim();
    if (!message || stop) return;
    input.value = "";
    const answer = h("p", { class: "answer", "data-testid": "chat-answer" });
    const problem = h("p", { class: "error", role: "alert", hidden: true });
    log.append(h("li", {}, h("p", { class: "question" }, message), answer, problem));
    log.setAttribute("aria-busy", "true");
    ask.disabled = true;
    stopButton.hidden = false;
    const asked = history.slice(-10);
    stop = session.live.subscribe(CHAT, { dashboardId, message, history: asked }, {
      next(data) {
        const event = data.dashboardChat;
        if (event.type === "TOKEN" && event.text) answer.textContent += event.text;
        else if (event.type === "ERROR") {
          problem.textContent = event.error || "The answer stopped";
          problem.hidden = false;
        } else if (event.type === "DONE") {
          history.push({ role: "user", content: message }, { role: "assistant", content: answer.textContent });
        }
      },
      error(error) {
        problem.textContent = describe(error);
        problem.hidden = false;
        finish();
      },
      complete: finish,
    });
  });

  return {
    element: h(
      "aside",
      { class: "chat panel", "aria-labelledby": "chat-title" },
      h("h2", { id: "chat-title" }, "Ask about this dashboard"),
      log,
      form,
    ),
    close: () => stop && stop(),
  };
}

async function showDashboard(id) {
  const status = h("p", { role: "status" }, "Loading…");
  show(h("main", {}, h("p", {}, h("a", { href: "#/" }, "← All dashboards")), h("h1", {}, "Dashboard"), status));
  const loading = shown;
  let board;
  try {
    board = (await api(DASHBOARD, { id })).dashboard;
  } catch (error) {
    status.textContent = `Could not open this dashboard: ${describe(error)}`;
    return;
  }
  if (loading !== shown) return; // the user went elsewhere meanwhile
  if (!board) {
    status.textContent = "There is no such dashboard, or it is not shared with you.";
    return;
  }

  const state = {};
  let generation = 0;
  let following = [];
  // The runs of the latest request that have not ended: cancelled when superseded, so
  // they neither hold a worker nor count against the user's queue allowance.
  let unfinished = new Set();
  const stopFollowing = () => {
    for (const stop of following) stop();
    following = [];
    for (const id of unfinished) api(CANCEL, { input: { id } }).catch(() => {});
    unfinished = new Set();
  };

  const cards = new Map();
  const grid = h("div", {
    class: "grid",
    style: { "--columns": String(board.layout.columns), "--row-height": `${board.layout.rowHeight}px` },
  });
  const items = [...board.layout.items].sort((a, b) => a.y - b.y || a.x - b.x);
  for (const item of items) {
    const view = cardView(item);
    cards.set(item.card.id, view);
    grid.append(view.element);
  }

  const runStatus = h("p", { class: "run-status", role: "status" });
  async function run(useCache = true) {
    const mine = ++generation;
    stopFollowing();
    runStatus.textContent = "Running the cards…";
    let executions;
    try {
      const data = await api(EXECUTE, {
        input: { id: board.id, filters: columnFilters(board.filters, state), useCache },
      });
      executions = data.executeDashboard.executions;
    } catch (error) {
      if (mine === generation) runStatus.textContent = `Could not run the cards: ${describe(error)}`;
      return;
    }
    if (mine !== generation) return;
    runStatus.textContent = "";
    const open = new Set(executions.filter((e) => !ENDED.has(e.status)).map((e) => e.id));
    unfinished = open;
    for (const execution of executions) {
      const view = execution.card && cards.get(execution.card.id);
      if (!view) continue;
      view.update(execution);
      following.push(
        session.live.subscribe(FOLLOW, { id: execution.id }, {
          next: (data) => {
            if (mine !== generation) return;
            if (ENDED.has(data.cardExecution.status)) open.delete(execution.id);
            view.update(data.cardExecution);
          },
          error: (error) => mine === generation && view.fail(describe(error)),
          complete: () => open.delete(execution.id),
        }),
      );
    }
  }
  let settling = null;
  function runSoon() {
    clearTimeout(settling);
    settling = setTimeout(run, FILTER_SETTLE_MS);
  }

  // Filters and saved views.
  const controls = new Map();
  const views = h("select", { id: "filter-view" });
  replaceChildren(
    views,
    h("option", { value: "" }, "Custom"),
    board.filterViews.map((view) =>
      h("option", { value: view.id }, view.isShared ? `${view.name} (shared)` : view.name),
    ),
  );
  for (const filter of board.filters) {
    const control = filterControl(filter, (value) => {
      state[filter.id] = value;
      views.value = "";
      runSoon();
    });
    controls.set(filter.id, control);
  }
  function applyView(view) {
    for (const filter of board.filters) {
      const value = view ? view.filterState[filter.id] : undefined;
      state[filter.id] = value;
      controls.get(filter.id).set(value);
    }
    views.value = view ? view.id : "";
  }
  views.addEventListener("change", () => {
    clearTimeout(settling);
    applyView(board.filterViews.find((view) => view.id === views.value) || null);
    run();
  });
  const refresh = h(
    "button",
    { type: "button", class: "secondary", onclick: () => { clearTimeout(settling); run(false); } },
    "Run again",
  );
  const toolbar = h(
    "form",
    { class: "toolbar panel", method: "post", "aria-label": "Filters", onsubmit: (e) => e.preventDefault() },
    [...controls.values()].map((control) => control.element),
    board.filterViews.length
      ? h("div", { class: "field" }, h("label", { for: "filter-view" }, "Saved view"), views)
      : null,
    h("div", { class: "field end" }, refresh),
  );

  const chat = chatPanel(board.id);
  show(
    h(
      "main",
      { class: "board" },
      h("p", {}, h("a", { href: "#/" }, "← All dashboards")),
      h("h1", {}, board.name),
      board.description ? h("p", { class: "description" }, board.description) : null,
      toolbar,
      runStatus,
      h("div", { class: "board-body" }, items.length ? grid : h("p", {}, "This dashboard has no cards."), chat.element),
    ),
  );
  let closed = false;
  closeView = () => {
    closed = true;
    clearTimeout(settling);
    generation++;
    stopFollowing();
    chat.close();
  };

  const initial =
    board.filterViews.find((view) => board.defaultFilterView && view.id === board.defaultFilterView.id) ||
    board.filterViews.find((view) => view.isDefault) ||
    null;
  // The values to choose from, then the (default view's) selection on top of them.
  try {
    const data = await api(FILTER_VALUES, { id: board.id });
    for (const filter of (data.dashboard && data.dashboard.filters) || []) {
      const control = controls.get(filter.id);
      if (control) control.setValues(filter.values);
    }
  } catch (error) {
    // The defined options stay; the cards still run.
  }
  if (closed) return;
  applyView(initial);
  run();
}

// ---------------------------------------------------------------- routing

function route() {
  if (!session) {
    showLogin();
    return;
  }
  const match = window.location.hash.match(/^#\/dashboards\/(.+)$/);
  if (match) showDashboard(decodeURIComponent(match[1]));
  else showDashboards();
}

async function start() {
  window.addEventListener("hashchange", route);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    try {
      const data = await request(ME, {}, token);
      signedIn(token, data.me);
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
    }
  }
  route();
}

start();
