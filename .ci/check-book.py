#!/usr/bin/env python3
"""Checks the rendered book (notes/book): every relative link and image resolves to a file the
book holds, every anchor a link names exists on its page, and no `{{#include}}` was left
unresolved. Usage: check-book.py BOOK_DIR. Exits 1 and lists what is wrong."""
import html.parser, os, re, sys, urllib.parse

book = sys.argv[1] if len(sys.argv) > 1 else "notes/book"


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if name in ("href", "src") and value:
                self.links.append(value)


pages = {}
for root, _, files in os.walk(book):
    for f in files:
        if f.endswith(".html"):
            path = os.path.join(root, f)
            parser = Links()
            text = open(path, encoding="utf-8").read()
            parser.feed(text)
            pages[os.path.normpath(path)] = (parser, text)

problems = []
for path, (parser, text) in sorted(pages.items()):
    if "{{#include" in text:
        problems.append(f"{path}: an unresolved {{{{#include}}}}")
    for link in parser.links:
        url = urllib.parse.urlparse(link)
        if url.scheme or link.startswith("//") or link.startswith("mailto:"):
            continue
        target = path if not url.path else os.path.normpath(
            os.path.join(os.path.dirname(path), urllib.parse.unquote(url.path)))
        if not os.path.exists(target):
            problems.append(f"{path}: dead link {link}")
        elif url.fragment and target in pages and url.fragment not in pages[target][0].ids:
            if os.path.basename(path) not in ("print.html", "toc.html"):
                problems.append(f"{path}: no anchor #{url.fragment} in {link}")

for p in problems:
    print(p)
print(f"{len(pages)} pages checked, {len(problems)} problems")
sys.exit(1 if problems else 0)
