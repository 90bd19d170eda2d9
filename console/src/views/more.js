// A list's "Show more": the next page (the API's Link header) appended
// to the table's rows, as long as there is one.
import { h } from "../dom.js";
import { nextPage } from "../api.js";

// more returns a "Show more" button that appends row(item) to tbody for
// every item of the page at next and of the pages after it, one click a
// page; null when next is null (the list is whole).
export function more(tbody, next, row) {
  if (!next) return null;
  const button = h("button", { type: "button", class: "more" }, "Show more");
  const holder = h("p", {}, button);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const p = await nextPage(next);
      tbody.append(...p.items.map(row));
      next = p.next;
      if (next) button.disabled = false;
      else holder.remove();
    } catch (err) {
      button.disabled = false;
      button.textContent = "Show more (" + err.message + ")";
    }
  });
  return holder;
}
