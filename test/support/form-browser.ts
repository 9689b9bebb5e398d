/**
 * A minimal "browser" for driving login pages in tests: a cookie jar, manual redirects, and
 * submission of the first HTML form on a page (hidden inputs plus the fields given).
 */

export interface Page {
  url: string;
  status: number;
  html: string;
}

export interface HtmlForm {
  action: string;
  method: string;
  fields: Record<string, string>;
}

function decodeEntities(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&#x2F;/g, "/")
    .replace(/&amp;/g, "&");
}

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, "i").exec(tag);
  return m === null ? undefined : decodeEntities(m[2] ?? m[3] ?? "");
}

/** The first `<form>` of a page with its inputs' names and values. */
export function parseForm(page: Page, index = 0): HtmlForm {
  const forms = [...page.html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/gi)];
  const form = forms[index]?.[0];
  if (form === undefined) throw new Error(`no form on ${page.url} (HTTP ${page.status}): ${page.html.slice(0, 500)}`);
  const open = /<form\b[^>]*>/i.exec(form)?.[0] ?? "";
  const fields: Record<string, string> = {};
  for (const [input] of form.matchAll(/<input\b[^>]*>/gi)) {
    const name = attr(input, "name");
    if (name !== undefined) fields[name] = attr(input, "value") ?? "";
  }
  return {
    action: new URL(attr(open, "action") ?? page.url, page.url).href,
    method: (attr(open, "method") ?? "get").toLowerCase(),
    fields,
  };
}

export class FormBrowser {
  readonly #cookies = new Map<string, Map<string, string>>();
  /** Every URL requested, in order. */
  readonly visited: string[] = [];

  #cookieHeader(url: URL): string {
    return [...(this.#cookies.get(url.host) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  #store(url: URL, res: Response): void {
    let jar = this.#cookies.get(url.host);
    if (jar === undefined) {
      jar = new Map();
      this.#cookies.set(url.host, jar);
    }
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const eq = (pair ?? "").indexOf("=");
      if (eq < 1) continue;
      const name = (pair as string).slice(0, eq).trim();
      const value = (pair as string).slice(eq + 1).trim();
      const expired = attrs.some(
        (a) =>
          /^\s*max-age\s*=\s*(0|-)/i.test(a) ||
          (/^\s*expires=/i.test(a) && Date.parse(a.split("=")[1] ?? "") < Date.now()),
      );
      if (expired || value === "") jar.delete(name);
      else jar.set(name, value);
    }
  }

  /** One request with cookies, following redirects (GET) until a non-redirect answer. */
  async request(url: string, init: { method?: string; body?: URLSearchParams } = {}, maxRedirects = 20): Promise<Page> {
    let current = new URL(url);
    let method = init.method ?? "GET";
    let body: URLSearchParams | undefined = init.body;
    for (let i = 0; i <= maxRedirects; i++) {
      this.visited.push(current.href);
      const headers: Record<string, string> = { "user-agent": "tollgate-test-browser" };
      const cookie = this.#cookieHeader(current);
      if (cookie !== "") headers.cookie = cookie;
      if (body !== undefined) headers["content-type"] = "application/x-www-form-urlencoded";
      const res = await fetch(current, {
        method,
        headers,
        redirect: "manual",
        ...(body === undefined ? {} : { body: body.toString() }),
      });
      this.#store(current, res);
      const location = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && location !== null) {
        await res.arrayBuffer();
        current = new URL(location, current);
        method = "GET";
        body = undefined;
        continue;
      }
      return { url: current.href, status: res.status, html: await res.text() };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  get(url: string): Promise<Page> {
    return this.request(url);
  }

  /** Submits the page's form (index) with its hidden fields overridden/extended by `fields`. */
  submit(page: Page, fields: Record<string, string> = {}, index = 0): Promise<Page> {
    const form = parseForm(page, index);
    const body = new URLSearchParams({ ...form.fields, ...fields });
    if (form.method === "get") {
      const u = new URL(form.action);
      for (const [k, v] of body) u.searchParams.set(k, v);
      return this.request(u.href);
    }
    return this.request(form.action, { method: "POST", body });
  }
}
