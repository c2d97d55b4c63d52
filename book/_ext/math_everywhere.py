"""Load MathJax on every page, not only on pages whose source holds a math node.

A number glued from a notebook as text can carry math (``$\\lambda_r$``); Sphinx decides per page
whether to add the MathJax script before that text is rendered, so such a page would show raw
TeX. The ``always`` assets policy adds the (vendored, offline) script to every page.
"""


def setup(app):
    app.set_html_assets_policy("always")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
