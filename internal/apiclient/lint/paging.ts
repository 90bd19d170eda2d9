// A TypeScript client of the API, typed by openapi-typescript from
// ../openapi-3.1.json: it pages through GET /api/datasources by the Link
// header the document declares, and reads a refusal as the problem JSON
// the document declares. TestOpenAPILint type-checks it (tsc, strict)
// and runs it against a server: DG_URL, DG_TOKEN, DG_LIMIT.
import type { components, paths } from "./schema";

type List = paths["/api/datasources"]["get"];
type Query = NonNullable<List["parameters"]["query"]>;
type Page = List["responses"][200]["content"]["application/json"];
type Link = List["responses"][200]["headers"]["Link"];
type Problem = List["responses"][401]["content"]["application/problem+json"];
type Datasource = components["schemas"]["Datasource"];

// next returns the URL of the next page a Link header names, or null.
export function next(link: Link | null): string | null {
  const m = /<([^>]*)>;\s*rel="next"/.exec(link ?? "");
  return m?.[1] ?? null;
}

// all reads every datasource, one page of limit at a time, and how many
// pages it took.
export async function all(base: string, token: string, limit: NonNullable<Query["limit"]>): Promise<{ names: string[]; pages: number }> {
  const names: string[] = [];
  let pages = 0;
  let url: string | null = "/api/datasources?limit=" + limit;
  while (url !== null) {
    const res: Response = await fetch(new URL(url, base), { headers: { Authorization: "Bearer " + token } });
    if (!res.ok) {
      const problem = (await res.json()) as Problem;
      throw new Error(`${problem.status ?? res.status}: ${problem.detail ?? problem.title ?? ""}`);
    }
    const page = (await res.json()) as Page;
    (page ?? []).forEach((d: Datasource) => names.push(d.name)); // the document allows null for an array
    pages++;
    url = next(res.headers.get("Link"));
  }
  return { names, pages };
}

declare const process: { env: Record<string, string | undefined>; exitCode?: number };

const base = process.env["DG_URL"];
if (base !== undefined) {
  all(base, process.env["DG_TOKEN"] ?? "", Number(process.env["DG_LIMIT"] ?? "50"))
    .then((r) => console.log(JSON.stringify(r)))
    .catch((err: unknown) => {
      console.error(String(err));
      process.exitCode = 1;
    });
}
