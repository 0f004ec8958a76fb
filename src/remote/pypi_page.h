/*
 * pypi_page.h — a Python package index's project page (the simple API: PEP 503's HTML, PEP
 * 691's JSON) with its file links rewritten, so that a client given the page through arca asks
 * arca for the files too.
 *
 * Contract: pure functions of their arguments and the callback's answers, any thread; the page
 * is `len` bytes, not NUL-terminated, never read past its end, and may be anything (a truncated,
 * hostile or random page gives a page, or NULL, never a crash). Each link is resolved against
 * the page's URL (RFC 3986, url_resolve) and handed to the caller's callback, which says what it
 * becomes; a link over PYPI_LINK_MAX bytes, or that is not http(s) once resolved, is left as it
 * is. Everything but the links is kept: the HTML byte for byte, the JSON value for value.
 */
#ifndef ARCA_PYPI_PAGE_H
#define ARCA_PYPI_PAGE_H

#include <stdbool.h>
#include <stddef.h>

/* The longest link rewritten, as written in the page (HTML: the href's value, entities in). */
#define PYPI_LINK_MAX 8192
/* The largest page a rewriting gives: 4 times the page and 64 KiB, never more than this (a
 * hostile page of short links under a long base would grow a thousandfold). Larger: NULL. */
#define PYPI_OUT_MAX (64u << 20)
/* The most a JSON page's parsed tree may hold, estimated from its text before it is parsed
 * (a real page's is about 5 times its size, one of "{}," 78 times). Larger: NULL. */
#define PYPI_TREE_MAX (256u << 20)

/* The link a page's file link becomes: `abs` is the link's absolute URL (resolved against the
 * page's URL, without its fragment), `sha256` its 64 lower-case hex digits when the page gave one
 * (an HTML link's #sha256= fragment, a JSON file's hashes.sha256), else NULL. Writes the new URL
 * (without a fragment) into out[size] and returns true; false leaves the link as `abs`. */
typedef bool pypi_link_fn(const char *abs, const char *sha256, char *out, size_t size, void *arg);

/* A PEP 503 HTML page of `len` bytes fetched from `page_url`, each <a href> rewritten by fn (the
 * first and the last href of an <a>: a browser reads the first, pip the last); the
 * fragment (#sha256=...) kept on the new link; everything else byte for byte. Tags and attribute
 * names are read in any case; an href quoted with '"' or '\'', or unquoted (then written back in
 * '"'), is HTML-unescaped before it is resolved and escaped again (buf_html) when written. The
 * first <base href> that resolves to an http(s) URL is the base of the links after it; every
 * <base href> is written back empty, so that a client resolves the new links against the page
 * arca serves. Comments are skipped; a tag with no closing '>' leaves the rest of the page as it
 * is. A malloc'd body (its length in *out_len), NULL: out of memory, a page that is not one
 * (`page_url` not an absolute http(s) URL; caller answers 502), or one rewritten too large
 * (PYPI_OUT_MAX). */
char *pypi_rewrite_html(const char *page, size_t len, const char *page_url, pypi_link_fn *fn,
                        void *arg, size_t *out_len);

/* A PEP 691 JSON page (application/vnd.pypi.simple.v1+json): each files[].url rewritten by fn
 * (a fragment kept on it, hashes kept; jansson), the rest kept; written compact. NULL: out of
 * memory, not a JSON object with a "files" array, or too large (PYPI_TREE_MAX, PYPI_OUT_MAX). */
char *pypi_rewrite_json(const char *page, size_t len, const char *page_url, pypi_link_fn *fn,
                        void *arg, size_t *out_len);

#endif
