// Notifications: the bell's unread count, the list, read, read all, delete.
import { h, icon } from "../dom.js";

const bellPath = "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1z";
import { call, can } from "../api.js";
import { when } from "../format.js";

const severities = { info: "none", success: "ok", warning: "warn", error: "bad", critical: "bad" };

// bell is the header's link to the notifications, with the unread count.
export async function bell() {
  const unread = (await call("list-notifications", { query: { unread: true, limit: 100 } })) || [];
  const n = unread.length >= 100 ? "99+" : String(unread.length);
  return h("a", { class: "bell", href: "#/notifications", "aria-label": "Notifications, " + n + " unread" },
    icon(bellPath), unread.length ? h("span", { class: "count", "aria-hidden": "true" }, n) : null);
}

export async function notifications(refresh) {
  const list = (await call("list-notifications", { query: { limit: 100 } })) || [];
  const act = (id, params) => async (ev) => {
    ev.target.disabled = true;
    try { await call(id, params); } finally { refresh(); }
  };
  return h("section", { "aria-labelledby": "nt-title" },
    h("h1", { id: "nt-title" }, "Notifications"),
    can("mark-all-notifications-read") && list.some((x) => !x.read)
      ? h("p", {}, h("button", { type: "button", onclick: act("mark-all-notifications-read") }, "Mark all read")) : null,
    list.length === 0 ? h("p", {}, "No notification.") :
      h("ul", { class: "notifications" }, list.map((x) => h("li", { class: x.read ? "read" : "unread" },
        h("span", { class: "badge " + (severities[x.severity] || "none") }, x.severity || x.type), " ",
        h("strong", {}, x.title), " ", h("span", { class: "detail" }, when(x.created_at)),
        h("p", {}, x.message),
        h("div", { class: "actions" },
          !x.read && can("mark-notification-read") ? h("button", { type: "button", "aria-label": "Mark " + x.title + " read",
            onclick: act("mark-notification-read", { params: { id: x.id } }) }, "Mark read") : null,
          can("delete-notification") ? h("button", { type: "button", "aria-label": "Delete " + x.title,
            onclick: act("delete-notification", { params: { id: x.id } }) }, "Delete") : null)))));
}
