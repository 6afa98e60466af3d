"""`widf-loader dashboard`: one page over the warehouse and the queues, for people rather than terminals.

`data` reads a `Snapshot` through the administrator's connection (the local
stack's or a cloud account's, the same code path as `snow query`), `page`
renders it as HTML with an inline SVG chart (no script, no CDN: it works
offline), and `app` serves it with Starlette.
"""
