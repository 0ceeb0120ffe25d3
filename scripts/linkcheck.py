#!/usr/bin/env python3
"""Checks the built book (target/book): every relative link of every page leads to a file of
the book, and every #fragment to an id in it; every page of docs/ is in docs/SUMMARY.md.
Usage: scripts/linkcheck.py BOOK_DIR DOCS_DIR. Prints each broken link; exits 1 if any."""
import html.parser
import os
import re
import sys
import urllib.parse


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        # mdBook's own navigation and assets are not the documentation's links.
        if tag == "a" and attrs.get("href") and "nav-chapters" not in (attrs.get("class") or ""):
            self.links.append((attrs["href"], self.getpos()[0]))


def parse(path, cache={}):
    if path not in cache:
        page = Page()
        with open(path, encoding="utf-8") as f:
            page.feed(f.read())
        cache[path] = page
    return cache[path]


def main(book, docs):
    problems = []
    pages = [os.path.join(d, f) for d, _, fs in os.walk(book) for f in fs if f.endswith(".html")]
    for page_path in sorted(pages):
        if os.path.basename(page_path) in ("print.html", "404.html", "toc.html"):
            continue
        for href, line in parse(page_path).links:
            url = urllib.parse.urlsplit(href)
            if url.scheme or url.netloc or href.startswith("mailto:"):
                continue
            target = page_path if not url.path else os.path.normpath(
                os.path.join(os.path.dirname(page_path), urllib.parse.unquote(url.path)))
            if os.path.isdir(target):
                target = os.path.join(target, "index.html")
            where = f"{os.path.relpath(page_path, book)}:{line}: {href}"
            if not os.path.isfile(target):
                problems.append(f"{where}: no such page")
            elif url.fragment and target.endswith(".html") and url.fragment not in parse(target).ids:
                problems.append(f"{where}: no #{url.fragment} on {os.path.relpath(target, book)}")
    with open(os.path.join(docs, "SUMMARY.md"), encoding="utf-8") as f:
        listed = set(re.findall(r"\]\(([^)#]+\.md)\)", f.read()))
    for name in sorted(os.listdir(docs)):
        if name.endswith(".md") and name != "SUMMARY.md" and name not in listed:
            problems.append(f"docs/{name}: not in docs/SUMMARY.md, so not in the book")
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} broken link(s) or missing page(s)", file=sys.stderr)
        return 1
    print(f"links checked: {len(pages)} pages")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
