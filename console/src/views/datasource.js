// One datasource: where it is, its status, the latency of its recent
// health checks (a small chart) and their list; check now, edit, delete.
import { h } from "../dom.js";
import { call, can } from "../api.js";
import { when } from "../format.js";
import { badge } from "./datasources.js";

// chart draws the latencies of checks (oldest first) as an SVG line, a
// failed check as a red dot on the axis.
function chart(checks) {
  const ns = "http://www.w3.org/2000/svg";
  const el = (tag, attrs) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  };
  const w = 600, hgt = 120, pad = 4;
  const max = Math.max(1, ...checks.map((c) => c.latency_ms || 0));
  const x = (i) => pad + (checks.length < 2 ? 0 : (i * (w - 2 * pad)) / (checks.length - 1));
  const y = (ms) => hgt - pad - ((ms || 0) * (hgt - 2 * pad)) / max;
  const svg = el("svg", { viewBox: `0 0 ${w} ${hgt}`, class: "chart", role: "img",
    "aria-label": `Latency of the last ${checks.length} health checks, at most ${max} ms` });
  svg.append(el("polyline", { points: checks.map((c, i) => `${x(i)},${y(c.latency_ms)}`).join(" "), class: "line" }));
  checks.forEach((c, i) => svg.append(c.status === "ok"
    ? el("circle", { cx: x(i), cy: y(c.latency_ms), r: 2, class: "point" })
    : el("circle", { cx: x(i), cy: hgt - pad, r: 3, class: "fail" })));
  return svg;
}

export async function datasource(refresh, id) {
  const [ds, checks] = await Promise.all([call("get-datasource", { params: { id } }),
    call("list-datasource-health-checks", { params: { id }, query: { limit: 50 } })]);
  const list = checks || []; // newest first
  const where = ds.path || `${ds.username ? ds.username + "@" : ""}${ds.host || ""}${ds.port ? ":" + ds.port : ""}/${ds.database || ""}`;
  const error = h("p", { class: "error", role: "alert" });
  return h("section", { "aria-labelledby": "dd-title" },
    h("p", {}, h("a", { href: "#/datasources" }, "← Datasources")),
    h("h1", { id: "dd-title" }, ds.name + " ", badge(ds.status)),
    h("p", { class: "detail" }, ds.type + " · " + where + " · last check " + when(ds.last_health_check_at)),
    h("div", { class: "actions start" },
      can("check-datasource") ? h("button", { type: "button", onclick: async (ev) => {
        ev.target.disabled = true;
        try { await call("check-datasource", { params: { id } }); } finally { refresh(); }
      } }, "Check now") : null,
      can("update-datasource") ? h("a", { class: "button", href: "#/datasources/" + encodeURIComponent(id) + "/edit" }, "Edit") : null,
      can("delete-datasource") ? h("button", { type: "button", onclick: async () => {
        if (!confirm(`Delete the datasource "${ds.name}"? Its backups stay on their storages.`)) return;
        try {
          await call("delete-datasource", { params: { id } });
          location.hash = "#/datasources";
        } catch (err) { error.textContent = err.message; }
      } }, "Delete") : null),
    error,
    h("h2", {}, "Health checks"),
    list.length === 0 ? h("p", {}, "No check yet.") : [
      chart([...list].reverse()),
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Checked"), h("th", {}, "Result"), h("th", {}, "Latency"), h("th", {}, "Error"))),
        h("tbody", {}, list.slice(0, 20).map((c) => h("tr", {},
          h("td", {}, when(c.checked_at)), h("td", {}, c.status), h("td", {}, (c.latency_ms ?? "—") + " ms"),
          h("td", {}, c.error_message || ""))))),
    ]);
}
