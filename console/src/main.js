// The console: sign-in, then one view per hash route (#/, #/datasources,
// #/backups, #/backups/{datasource}, #/executions/{id}), refreshed live from the API's event stream (GET /api/events), or every
// 15 s when the stream is down.
import { h, replace } from "./dom.js";
import { call, can, session, url, APIError } from "./api.js";
import { signin } from "./views/signin.js";
import { dashboard } from "./views/dashboard.js";
import { datasources } from "./views/datasources.js";
import { datasourceForm } from "./views/datasource-form.js";
import { datasource } from "./views/datasource.js";
import { jobs, jobExecutions } from "./views/jobs.js";
import { jobForm } from "./views/job-form.js";
import { bell, notifications } from "./views/notifications.js";
import { tokens } from "./views/tokens.js";
import { settings } from "./views/settings.js";
import { backupDatasources, datasourceBackups, execution } from "./views/backups.js";

// routes by the hash's first segment; view(refresh, arg) renders the page
// (arg: the second segment, decoded); op is the operation it reads, whose
// permission shows its link; nav: in the menu.
const routes = {
  "": { title: "Dashboard", view: dashboard, op: "get-dashboard-overview", nav: true },
  datasources: {
    title: "Datasources", op: "list-datasources", nav: true,
    view: async (refresh, arg, action) => {
      if (arg === "new" && can("create-datasource")) return datasourceForm();
      if (arg && action === "edit" && can("update-datasource")) return datasourceForm(await call("get-datasource", { params: { id: arg } }));
      return arg ? datasource(refresh, arg) : datasources(refresh);
    },
  },
  jobs: {
    title: "Backup jobs", op: "list-backup-jobs", nav: true,
    view: (refresh, id) => id === "new" && can("create-backup-job") ? jobForm() : id ? jobExecutions(refresh, id) : jobs(refresh),
  },
  backups: {
    title: "Backups", op: "list-backup-datasources", nav: true,
    view: (refresh, id) => id ? datasourceBackups(refresh, id) : backupDatasources(refresh),
  },
  executions: { title: "Execution", view: execution, op: "get-execution" },
  notifications: { title: "Notifications", view: notifications, op: "list-notifications" },
  settings: { title: "Settings", view: settings, op: "get-notification-settings", nav: true },
  tokens: { title: "API tokens", view: tokens, op: "list-api-tokens", nav: true },
};

const app = document.getElementById("app");
const main = h("main", { id: "main", tabindex: "-1" });
const navHolder = h("div", { class: "nav" });
const bellHolder = h("span", { class: "bell-holder" });
let events = null;
let poll = null;

// route is the hash's segments: "#/backups/abc" is ["backups", "abc"].
function route() {
  return location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
}

function nav() {
  const current = route()[0];
  return h("nav", { "aria-label": "Sections" }, h("ul", {},
    Object.entries(routes).filter(([, r]) => r.nav && can(r.op)).map(([path, r]) =>
      h("li", {}, h("a", { href: "#/" + path, "aria-current": path === current ? "page" : false }, r.title)))));
}

// rendering counts renders: a view still waiting for the API when a newer
// one started (a refresh from the stream, then a click) must not replace
// the newer page when its answer arrives.
let rendering = 0;

async function render() {
  const [name, arg, action] = route();
  const r = routes[name] || routes[""];
  const mine = ++rendering;
  document.title = r.title + " · DataGuardian";
  if (can("list-notifications")) bell().then((b) => replace(bellHolder, b), () => {});
  let page;
  try {
    page = await r.view(render, arg, action);
  } catch (err) {
    if (mine !== rendering) return;
    if (err instanceof APIError && err.status === 401) return signOut();
    page = h("p", { class: "error", role: "alert" }, err.message);
  }
  if (mine !== rendering) return;
  replace(main, page);
  performance.mark("dg:render"); // the page shows the API's data (bench/console.sh reads it)
}

// refresh renders the page again for news from the API, unless it holds a
// form being filled in (it would be lost).
function refresh() {
  if (!main.querySelector("form")) render();
}

function shell() {
  const me = session.me;
  replace(app,
    h("a", { class: "skip", href: "#main", onclick: (ev) => { ev.preventDefault(); main.focus(); } }, "Skip to content"),
    h("header", {},
      h("span", { class: "brand" }, "DataGuardian"),
      navHolder,
      h("span", { class: "who" }, me.name),
      can("list-notifications") ? bellHolder : null,
      h("button", { type: "button", onclick: signOut }, "Sign out")),
    main);
  replace(navHolder, nav());
  render();
  listen();
}

// listen re-renders on every event of the API's stream; EventSource cannot
// send a header, so the stream is read with fetch.
async function listen() {
  stopListening();
  const ctl = new AbortController();
  events = ctl;
  try {
    const res = await fetch(url("api/events"), { headers: { Authorization: "Bearer " + session.token() }, signal: ctl.signal });
    if (!res.ok || !res.body) throw new Error("event stream: HTTP " + res.status);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let pending = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (value.includes("data:") && !pending) pending = setTimeout(() => { pending = null; refresh(); }, 300);
    }
    throw new Error("event stream ended");
  } catch (err) {
    if (ctl.signal.aborted) return;
    poll = setInterval(refresh, 15000); // fall back to polling, try the stream again later
    setTimeout(() => { if (events === ctl) listen(); }, 30000);
  }
}

function stopListening() {
  if (events) events.abort();
  events = null;
  clearInterval(poll);
}

function signOut() {
  stopListening();
  session.clear();
  session.me = null;
  location.hash = "";
  replace(app, signin(shell));
}

window.addEventListener("hashchange", () => {
  if (!session.me) return;
  replace(navHolder, nav());
  render();
});

(async () => {
  if (session.token()) {
    try {
      session.me = await call("get-current-api-token");
      return shell();
    } catch {
      session.clear();
    }
  }
  replace(app, signin(shell));
})();
