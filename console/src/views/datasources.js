// Datasources: status badges, last check, check now.
import { h } from "../dom.js";
import { call, can, page } from "../api.js";
import { when } from "../format.js";
import { more } from "./more.js";

const badges = { healthy: "ok", warning: "warn", critical: "bad", unknown: "none" };

export function badge(status) {
  return h("span", { class: "badge " + (badges[status] || "none") }, status);
}

export async function datasources(refresh) {
  const { items: list, next } = await page("list-datasources");
  const row = (ds) => h("tr", {},
    h("td", {}, h("a", { href: "#/datasources/" + encodeURIComponent(ds.id) }, ds.name)), h("td", {}, ds.type), h("td", {}, badge(ds.status)),
    h("td", {}, when(ds.last_health_check_at)),
    h("td", {}, can("check-datasource") ? h("button", {
      type: "button", "aria-label": "Check " + ds.name + " now",
      onclick: async (ev) => {
        ev.target.disabled = true;
        try { await call("check-datasource", { params: { id: ds.id } }); } finally { refresh(); }
      },
    }, "Check now") : null));
  const tbody = h("tbody", {}, list.map(row));
  return h("section", { "aria-labelledby": "ds-title" },
    h("h1", { id: "ds-title" }, "Datasources"),
    can("create-datasource") ? h("p", {}, h("a", { class: "button", href: "#/datasources/new" }, "New datasource")) : null,
    list.length === 0 ? h("p", {}, "No datasource yet.") :
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Type"), h("th", {}, "Status"),
          h("th", {}, "Last check"), h("th", {}, h("span", { class: "sr-only" }, "Actions")))),
        tbody),
    more(tbody, next, row));
}
