// Datasources: status badges, last check, check now.
import { h } from "../dom.js";
import { call, can } from "../api.js";
import { when } from "../format.js";

const badges = { healthy: "ok", warning: "warn", critical: "bad", unknown: "none" };

export function badge(status) {
  return h("span", { class: "badge " + (badges[status] || "none") }, status);
}

export async function datasources(refresh) {
  const list = (await call("list-datasources")) || [];
  const rows = list.map((ds) => h("tr", {},
    h("td", {}, h("a", { href: "#/datasources/" + encodeURIComponent(ds.id) }, ds.name)), h("td", {}, ds.type), h("td", {}, badge(ds.status)),
    h("td", {}, when(ds.last_health_check_at)),
    h("td", {}, can("check-datasource") ? h("button", {
      type: "button", "aria-label": "Check " + ds.name + " now",
      onclick: async (ev) => {
        ev.target.disabled = true;
        try { await call("check-datasource", { params: { id: ds.id } }); } finally { refresh(); }
      },
    }, "Check now") : null)));
  return h("section", { "aria-labelledby": "ds-title" },
    h("h1", { id: "ds-title" }, "Datasources"),
    can("create-datasource") ? h("p", {}, h("a", { class: "button", href: "#/datasources/new" }, "New datasource")) : null,
    list.length === 0 ? h("p", {}, "No datasource yet.") :
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Type"), h("th", {}, "Status"),
          h("th", {}, "Last check"), h("th", {}, h("span", { class: "sr-only" }, "Actions")))),
        h("tbody", {}, rows)));
}
