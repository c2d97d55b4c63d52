"""A Colab entry in the launch menu of every notebook page, opening its committed `.ipynb` copy.

The notebooks are jupytext `.py` files; Colab opens only `.ipynb` from a repository, so the theme's
own Colab button (which opens the page's source file) cannot work. `make ipynb` writes a copy of
each notebook to `notebooks/colab/<name>.ipynb` (`ddgd.launch`); this extension adds, after the
theme has built its launch menu, a Colab link to that copy on GitHub, from the repository address
and branch of the book's configuration. Pages without a copy get no Colab link.
"""
from pathlib import Path

COLAB = "https://colab.research.google.com"


def add_colab_link(app, pagename, templatename, context, doctree):
    options = app.config.html_theme_options
    repo_url, branch = options.get("repository_url", ""), options.get("repository_branch", "main")
    copy = Path(app.config.colab_copies) / f"{Path(pagename).name}.ipynb"
    if "github.com/" not in repo_url or not (Path(app.srcdir) / copy).is_file():
        return
    org, repo = repo_url.split("github.com/")[-1].strip("/").split("/")[:2]
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            group["buttons"].append({"type": "link", "text": "Colab", "tooltip": "Launch on Colab",
                                     "icon": "_static/images/logo_colab.png",
                                     "url": f"{COLAB}/github/{org}/{repo}/blob/{branch}/{copy.as_posix()}"})


def setup(app):
    app.add_config_value("colab_copies", "notebooks/colab", "html")
    app.connect("html-page-context", add_colab_link, priority=510)  # after the theme's launch menu (501)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
